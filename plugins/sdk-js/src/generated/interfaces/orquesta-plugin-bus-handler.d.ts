/// <reference path="./orquesta-plugin-events.d.ts" />
/// <reference path="./orquesta-plugin-types.d.ts" />
declare module 'orquesta:plugin/bus-handler@0.1.2' {
  export function handle(event: BusEvent): Response;
  export type Failure = import('orquesta:plugin/types@0.1.2').Failure;
  export type BusEvent = import('orquesta:plugin/events@0.1.2').BusEvent;
  export type Response = import('orquesta:plugin/events@0.1.2').Response;
}
