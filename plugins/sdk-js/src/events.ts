// The trigger events, built from the generated records.

import { Failure } from "./errors";
import type { Fields } from "./responses";

/** The shapes the bindings hand over (jco's: records as objects, `option` as
 * `undefined`, `list<u8>` as `Uint8Array`, `u64` as `bigint`). */
export interface WitIdentity {
  subject: string;
  email?: string;
  name?: string;
  groups: string[];
  scopes: string[];
}

export interface WitHttpRequest {
  method: string;
  path: string;
  params: Fields;
  query: Fields;
  headers: Fields;
  body: Uint8Array;
  identity?: WitIdentity;
}

export interface QueueMessage {
  id: string;
  queue: string;
  body: string;
  attributes: Fields;
  groupId?: string;
  /** 1 on first delivery. */
  receiveCount: number;
  /** Milliseconds since the Unix epoch. */
  sentAt: bigint;
}

export interface Notification {
  id: string;
  topic: string;
  subject?: string;
  body: string;
  attributes: Fields;
}

export interface BusEvent {
  id: string;
  bus: string;
  source: string;
  detailType: string;
  /** JSON; `parseJson(event.detail)` reads it. */
  detail: string;
  time: bigint;
}

export interface Tick {
  schedule: string;
  scheduledAt: bigint;
  /** The schedule's fixed JSON input. */
  input: string;
}

export interface Task {
  executionId: string;
  state: string;
  /** JSON: the state's input. */
  input: string;
  /** JSON: the `$$` context object. */
  context: string;
}

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
