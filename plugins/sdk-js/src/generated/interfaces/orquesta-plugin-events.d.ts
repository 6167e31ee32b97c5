/// <reference path="./orquesta-plugin-types.d.ts" />
declare module 'orquesta:plugin/events@0.1.2' {
  export type Fields = import('orquesta:plugin/types@0.1.2').Fields;
  /**
   * Who called, as verified by the host (API key owner or JWT claims).
   */
  export interface Identity {
    subject: string,
    email?: string,
    name?: string,
    groups: Array<string>,
    scopes: Array<string>,
  }
  /**
   * An HTTP request routed to the plugin.
   */
  export interface HttpRequest {
    method: string,
    /**
     * The path below the tenant prefix, e.g. `/appointments/42`.
     */
    path: string,
    /**
     * Values of the route's `{name}` parameters.
     */
    params: Fields,
    query: Fields,
    headers: Fields,
    body: Uint8Array,
    identity?: Identity,
  }
  /**
   * A message received from a queue.
   */
  export interface QueueMessage {
    id: string,
    queue: string,
    body: string,
    attributes: Fields,
    groupId?: string,
    /**
     * 1 on first delivery.
     */
    receiveCount: number,
    /**
     * Milliseconds since the Unix epoch.
     */
    sentAt: bigint,
  }
  /**
   * A message published to a topic this plugin subscribes to.
   */
  export interface Notification {
    id: string,
    topic: string,
    subject?: string,
    body: string,
    attributes: Fields,
  }
  /**
   * An event a bus rule routed to the plugin. `detail` is JSON.
   */
  export interface BusEvent {
    id: string,
    bus: string,
    source: string,
    detailType: string,
    detail: string,
    /**
     * Milliseconds since the Unix epoch.
     */
    time: bigint,
  }
  /**
   * A schedule's tick. `input` is the schedule's fixed JSON input.
   */
  export interface ScheduledTick {
    schedule: string,
    /**
     * When the tick was due, milliseconds since the Unix epoch.
     */
    scheduledAt: bigint,
    input: string,
  }
  /**
   * A workflow Task state's input. `input` and `context` (the `$$` object) are JSON.
   */
  export interface TaskInput {
    executionId: string,
    state: string,
    input: string,
    context: string,
  }
  export interface HttpResponse {
    status: number,
    headers: Fields,
    body: Uint8Array,
  }
  /**
   * A successful result. A trigger kind that needs another kind of answer gets a
   * result type of its own in its own handler interface; this variant does not grow.
   */
  export type Response = ResponseHttp | ResponseJson | ResponseBatch | ResponseNone;
  /**
   * The answer to an HTTP request (`http-handler`).
   */
  export interface ResponseHttp {
    tag: 'http',
    val: HttpResponse,
  }
  /**
   * A JSON document: a task's output, or any trigger's result.
   */
  export interface ResponseJson {
    tag: 'json',
    val: string,
  }
  /**
   * For a queue batch: the ids of the messages that failed and must come back;
   * the rest are done.
   */
  export interface ResponseBatch {
    tag: 'batch',
    val: Array<string>,
  }
  /**
   * Nothing to report.
   */
  export interface ResponseNone {
    tag: 'none',
  }
}
