// Structured logging into the host's logs (WIT `log`), tagged by the host with tenant,
// plugin and invocation.

import * as w from "orquesta:plugin/log@0.1.2";

type Level = "trace" | "debug" | "info" | "warn" | "error";
type LogFields = Record<string, unknown>;

function emit(level: Level, message: string, fields: LogFields = {}): void {
  w.log(
    level,
    message,
    Object.entries(fields).map(([k, v]) => [k, typeof v === "string" ? v : String(v)]),
  );
}

export const trace = (message: string, fields?: LogFields) => emit("trace", message, fields);
export const debug = (message: string, fields?: LogFields) => emit("debug", message, fields);
export const info = (message: string, fields?: LogFields) => emit("info", message, fields);
export const warn = (message: string, fields?: LogFields) => emit("warn", message, fields);
export const error = (message: string, fields?: LogFields) => emit("error", message, fields);
