/// <reference path="./orquesta-plugin-events.d.ts" />
/// <reference path="./orquesta-plugin-types.d.ts" />
declare module 'orquesta:plugin/schedule-handler@0.1.2' {
  export function handle(tick: ScheduledTick): Response;
  export type Failure = import('orquesta:plugin/types@0.1.2').Failure;
  export type ScheduledTick = import('orquesta:plugin/events@0.1.2').ScheduledTick;
  export type Response = import('orquesta:plugin/events@0.1.2').Response;
}
