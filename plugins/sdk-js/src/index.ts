// orquesta's TypeScript SDK: typed helpers over the bindings componentize-js generates
// from `wit/plugin.wit`, whose types jco generates into generated/ (docs/PLUGINS.md,
// "TypeScript plugins").
//
// A plugin registers one function per trigger kind it answers:
//
//     import { onHttp, Response } from "orquesta";
//     onHttp((req) => Response.json({ hello: req.query.name ?? "world" }));
//
// and is built with `orquesta build app.ts -o app.wasm`, which exports the handler
// interface of each `onKIND(` it finds (and only those). A handler throws
// `new Failure(error, cause)` to fail with the contract's `failure`; a host call the
// tenant did not grant throws `HostError`, which becomes a failure named as the Rust SDK
// names it (`Denied`, `Unavailable`, `Invalid`, `Timeout`, `HostFailed`) when not caught.
// Any other exception becomes the failure `UnhandledException`.

/// <reference path="./generated/orquesta-js-plugin.d.ts" />

export { Failure, HostError, TaskError } from "./errors";
export { Request, parseJson } from "./events";
export type { BusEvent, Notification, QueueMessage, Task, Tick } from "./events";
export { onBus, onHttp, onQueue, onSchedule, onTask, onTopic } from "./handlers";
export { Batch, Response } from "./responses";
export type { Fields } from "./responses";
export * as blob from "./blob";
export * as config from "./config";
export * as http from "./http";
export * as kv from "./kv";
export * as log from "./log";
export * as messaging from "./messaging";
export * as sql from "./sql";
export * as tasks from "./tasks";
