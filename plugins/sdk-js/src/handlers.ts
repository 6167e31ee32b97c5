// Registering a function per trigger kind, and the objects componentize-js calls.
//
// `orquesta build` writes the component's entry module: it imports the app (whose
// `onHttp(...)`, `onQueue(...)` calls register here), calls `checkExported` with the
// kinds it exported, and exports `exported`'s object for each (`httpHandler`, ...).

import type * as busHandler from "orquesta:plugin/bus-handler@0.1.2";
import type * as events from "orquesta:plugin/events@0.1.2";
import type * as httpHandler from "orquesta:plugin/http-handler@0.1.2";
import type * as queueHandler from "orquesta:plugin/queue-handler@0.1.2";
import type * as scheduleHandler from "orquesta:plugin/schedule-handler@0.1.2";
import type * as taskHandler from "orquesta:plugin/task-handler@0.1.2";
import type * as topicHandler from "orquesta:plugin/topic-handler@0.1.2";
import type * as types from "orquesta:plugin/types@0.1.2";
import { Failure, HostError } from "./errors";
import {
  BusEvent,
  Notification,
  QueueMessage,
  Request,
  Task,
  Tick,
  WitHttpRequest,
} from "./events";
import { Batch, Response } from "./responses";

export const KINDS = ["http", "queue", "topic", "bus", "schedule", "task"] as const;
export type Kind = (typeof KINDS)[number];

type Answer<T> = T | Promise<T>;
/** What a handler may return: a `Response` (HTTP), a `Batch` (queue), `undefined`
 * (nothing to report) or any JSON value (an HTTP handler's is answered as JSON with 200). */
export type Result = Response | Batch | undefined | null | unknown;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const registered: Partial<Record<Kind, (event: any) => Answer<Result>>> = {};

function register<E>(kind: Kind) {
  return (handler: (event: E) => Answer<Result>): void => {
    if (registered[kind]) throw new Error(`two ${kind} handlers registered`);
    registered[kind] = handler;
  };
}

export const onHttp = register<Request>("http");
export const onQueue = register<QueueMessage[]>("queue");
export const onTopic = register<Notification>("topic");
export const onBus = register<BusEvent>("bus");
export const onSchedule = register<Tick>("schedule");
export const onTask = register<Task>("task");

const upper = (kind: string) => kind[0].toUpperCase() + kind.slice(1);

/** Runs at build time (componentize-js pre-initialises the module): the exported handler
 * interfaces and the registered functions must be the same kinds, so a plugin never
 * exports a handler it has no function for, nor registers one no trigger can reach. */
export function checkExported(kinds: string[]): void {
  const problems: string[] = [];
  for (const kind of kinds) {
    if (!registered[kind as Kind]) {
      problems.push(`the build exports ${kind} but the app registers no function for it (on${upper(kind)})`);
    }
  }
  for (const kind of Object.keys(registered)) {
    if (!kinds.includes(kind)) {
      problems.push(`the app registers ${kind} but the build does not export it: add --trigger ${kind} to orquesta build`);
    }
  }
  if (problems.length) throw new Error(problems.join("; "));
}

function failureOf(e: unknown): types.Failure {
  if (e instanceof Failure) return { error: e.error, cause: e.cause };
  if (e instanceof HostError) {
    const f = e.toFailure();
    return { error: f.error, cause: f.cause };
  }
  // The plugin's bug: a failure naming it, not a trap.
  if (e instanceof Error) return { error: "UnhandledException", cause: `${e.name}: ${e.message}` };
  return { error: "UnhandledException", cause: String(e) };
}

type WitResponse = events.Response;

function response(value: Result): WitResponse {
  if (value instanceof Response) {
    return { tag: "http", val: { status: value.status, headers: value.headers, body: value.body } };
  }
  if (value instanceof Batch) return { tag: "batch", val: value.failed };
  if (value === undefined || value === null) return { tag: "none" };
  return { tag: "json", val: JSON.stringify(value) };
}

function httpResponse(value: Result): WitResponse {
  // An HTTP answer is a `Response`; any other value is answered as JSON with 200.
  return response(value instanceof Response ? value : Response.json(value ?? null));
}

/** Runs the registered function on the event `make` builds and converts its answer; a
 * thrown failure becomes the result's `err` (componentize-js takes a thrown value as the
 * `err` payload of a `result` return). */
async function call(kind: Kind, make: () => unknown, convert: (r: Result) => WitResponse): Promise<WitResponse> {
  let answer: Result;
  try {
    const handler = registered[kind];
    if (!handler) throw new Failure("NoHandler", `no ${kind} handler registered`);
    answer = await handler(make());
  } catch (e) {
    throw failureOf(e);
  }
  try {
    return convert(answer);
  } catch (e) {
    throw failureOf(e);
  }
}

/** A handler interface as the entry module exports it: the generated `handle` taking the
 * same event, answering through a promise (componentize-js awaits it). */
type Exported<H extends { handle: (event: never) => unknown }> = {
  handle: (...event: Parameters<H["handle"]>) => Promise<ReturnType<H["handle"]>>;
};

/** The objects the entry module exports under the generated interface names. */
export const exported: {
  httpHandler: Exported<typeof httpHandler>;
  queueHandler: Exported<typeof queueHandler>;
  topicHandler: Exported<typeof topicHandler>;
  busHandler: Exported<typeof busHandler>;
  scheduleHandler: Exported<typeof scheduleHandler>;
  taskHandler: Exported<typeof taskHandler>;
} = {
  httpHandler: { handle: (r: WitHttpRequest) => call("http", () => new Request(r), httpResponse) },
  queueHandler: { handle: (m: QueueMessage[]) => call("queue", () => m, response) },
  topicHandler: { handle: (n: Notification) => call("topic", () => n, response) },
  busHandler: { handle: (e: BusEvent) => call("bus", () => e, response) },
  scheduleHandler: { handle: (t: Tick) => call("schedule", () => t, response) },
  taskHandler: { handle: (t: Task) => call("task", () => t, response) },
};
