// The trigger events, built from the generated records.

import type * as w from "orquesta:plugin/events@0.1.2";
import { Failure } from "./errors";
import type { Fields } from "./responses";

// The records the bindings hand over, as jco generates them from the contract
// (generated/; records as objects, `option` as `undefined`, `list<u8>` as `Uint8Array`,
// `u64` as `bigint`).

export type WitIdentity = w.Identity;
export type WitHttpRequest = w.HttpRequest;
/** A queue message; `receiveCount` is 1 on first delivery, `sentAt` milliseconds since
 * the Unix epoch. */
export type QueueMessage = w.QueueMessage;
export type Notification = w.Notification;
/** A bus event; `detail` is JSON (`parseJson(event.detail)` reads it). */
export type BusEvent = w.BusEvent;
/** A schedule's tick; `input` is the schedule's fixed JSON input. */
export type Tick = w.ScheduledTick;
/** A workflow Task state's call; `input` (the state's input) and `context` (the `$$`
 * object) are JSON. */
export type Task = w.TaskInput;

/** Parses JSON handed over by the host; bad JSON is the failure `InvalidJson`. */
export function parseJson(text: string, what = "body"): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Failure("InvalidJson", `${what} is not JSON: ${(e as Error).message}`);
  }
}

// A repeated name keeps its first value, as the Rust SDK's `field` does.
function toMap(fields: Fields, lower = false): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of fields) {
    const key = lower ? name.toLowerCase() : name;
    if (!Object.prototype.hasOwnProperty.call(out, key)) out[key] = value;
  }
  return out;
}

/** An HTTP request routed to the plugin. `headers` has lower-case names; `headerFields`
 * keeps every (name, value) pair as received. */
export class Request {
  readonly method: string;
  readonly path: string;
  readonly params: Record<string, string>;
  readonly query: Record<string, string>;
  readonly headers: Record<string, string>;
  readonly headerFields: Fields;
  readonly body: Uint8Array;
  readonly identity?: WitIdentity;

  constructor(w: WitHttpRequest) {
    this.method = w.method;
    this.path = w.path;
    this.params = toMap(w.params);
    this.query = toMap(w.query);
    this.headers = toMap(w.headers, true);
    this.headerFields = w.headers;
    this.body = w.body;
    this.identity = w.identity;
  }

  text(): string {
    return new TextDecoder().decode(this.body);
  }

  /** The body as JSON; bad JSON is the failure `InvalidJson`. */
  json(): unknown {
    return parseJson(this.text());
  }
}
