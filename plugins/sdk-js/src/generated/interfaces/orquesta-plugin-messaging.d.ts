/// <reference path="./orquesta-plugin-types.d.ts" />
declare module 'orquesta:plugin/messaging@0.1.2' {
  /**
   * Send `body` to `queue`. Returns the message id.
   */
  export function send(queue: string, body: string, options: SendOptions): string;
  /**
   * Put an event on `bus`; its rules route it. `detail` is JSON. Returns the event id.
   */
  export function putEvent(bus: string, source: string, detailType: string, detail: string): string;
  /**
   * Start an execution of the tenant's workflow with JSON `input`. A `name` makes the
   * start idempotent. Returns the execution id.
   */
  export function startExecution(workflow: string, input: string, name: string | undefined): string;
  export type HostError = import('orquesta:plugin/types@0.1.2').HostError;
  export type Fields = import('orquesta:plugin/types@0.1.2').Fields;
  export interface SendOptions {
    /**
     * Seconds before the message becomes visible to consumers, at most 900; it
     * replaces the queue's `delay_seconds`, and 0 takes the queue's.
     */
    delaySeconds: number,
    attributes: Fields,
    /**
     * Messages with the same group id are delivered in order, one at a time.
     */
    groupId?: string,
    /**
     * Within a FIFO queue's deduplication window, a repeated id is dropped.
     */
    deduplicationId?: string,
  }
}
