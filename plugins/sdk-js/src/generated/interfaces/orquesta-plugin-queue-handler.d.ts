/// <reference path="./orquesta-plugin-events.d.ts" />
/// <reference path="./orquesta-plugin-types.d.ts" />
declare module 'orquesta:plugin/queue-handler@0.1.2' {
  /**
   * `batch` names the messages that must come back; an `err` brings back every one.
   */
  export function handle(messages: Array<QueueMessage>): Response;
  export type Failure = import('orquesta:plugin/types@0.1.2').Failure;
  export type QueueMessage = import('orquesta:plugin/events@0.1.2').QueueMessage;
  export type Response = import('orquesta:plugin/events@0.1.2').Response;
}
