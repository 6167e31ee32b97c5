/// <reference path="./orquesta-plugin-events.d.ts" />
/// <reference path="./orquesta-plugin-types.d.ts" />
declare module 'orquesta:plugin/topic-handler@0.1.2' {
  export function handle(notification: Notification): Response;
  export type Failure = import('orquesta:plugin/types@0.1.2').Failure;
  export type Notification = import('orquesta:plugin/events@0.1.2').Notification;
  export type Response = import('orquesta:plugin/events@0.1.2').Response;
}
