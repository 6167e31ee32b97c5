// Queues, the event bus, workflow executions (WIT `messaging`) and topics (WIT `notify`).

import * as w from "orquesta:plugin/messaging@0.1.2";
import * as n from "orquesta:plugin/notify@0.1.2";
import { hostCall } from "./errors";
import type { Fields } from "./responses";

export interface SendOptions {
  /** Seconds before consumers see the message, at most 900; 0 takes the queue's. */
  delaySeconds?: number;
  attributes?: Fields;
  groupId?: string;
  deduplicationId?: string;
}

const text = (body: unknown): string => (typeof body === "string" ? body : JSON.stringify(body));

/** Sends `body` (a string as is, anything else as JSON) to `queue`; the message id. */
export function send(queue: string, body: unknown, options: SendOptions = {}): string {
  return hostCall(() =>
    w.send(queue, text(body), {
      delaySeconds: options.delaySeconds ?? 0,
      attributes: options.attributes ?? [],
      groupId: options.groupId,
      deduplicationId: options.deduplicationId,
    }),
  );
}

/** Puts an event with JSON `detail` on `bus`; the event id. */
export function putEvent(bus: string, source: string, detailType: string, detail: unknown): string {
  return hostCall(() => w.putEvent(bus, source, detailType, JSON.stringify(detail)));
}

/** Starts an execution of the tenant's workflow; a `name` makes it idempotent. */
export function startExecution(workflow: string, input: unknown, name?: string): string {
  return hostCall(() => w.startExecution(workflow, JSON.stringify(input), name));
}

/** Publishes `body` to `topic`; the message id. */
export function publish(topic: string, body: unknown, subject?: string, attributes: Fields = []): string {
  return hostCall(() => n.publish(topic, subject, text(body), attributes));
}
