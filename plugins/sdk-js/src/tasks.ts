// Answers to workflow callback tasks (`.waitForTaskToken`, WIT `workflow-tasks`), as a
// Lambda sends them with the cloud's SDK: a task's plugin gets a token in its input
// (`"token.$": "$$.Task.Token"` in the state's `Parameters`), keeps it, and whatever later
// knows the result (a queue message, an HTTP route, a schedule) answers with it. The
// plugin needs `allow.workflow_tasks` naming the workflow (docs/TENANTS.md).
//
//     tasks.succeed(token, { approved: true });
//     tasks.fail(token, "Rejected", "over budget");
//     tasks.heartbeat(token);
//
// A refused answer throws `TaskError`, a `Failure` named as the cloud names it
// (`TaskTimedOut`, `TaskDoesNotExist`, `InvalidToken`, `InvalidOutput`; `Denied`, ...).

import * as w from "orquesta:plugin/workflow-tasks@0.1.2";
import { taskCall } from "./errors";

/** SendTaskSuccess: the task ends with `output` (as JSON, at most 256 KiB) as its result. */
export function succeed(token: string, output: unknown): void {
  taskCall(() => w.sendTaskSuccess(token, JSON.stringify(output) ?? "null"));
}

/** SendTaskFailure: the task fails with `error` (at most 256 characters) and `cause`
 * (at most 32,768), which its state's `Retry` and `Catch` match. */
export function fail(token: string, error: string, cause: string): void {
  taskCall(() => w.sendTaskFailure(token, error, cause));
}

/** SendTaskHeartbeat: the task's `HeartbeatSeconds` start again. */
export function heartbeat(token: string): void {
  taskCall(() => w.sendTaskHeartbeat(token));
}

/** The token a state put in the task's input under `field` (`"token.$":
 * "$$.Task.Token"`), searching nested objects such as a `Payload`. */
export function tokenIn(input: unknown, field: string): string | undefined {
  if (typeof input !== "object" || input === null || Array.isArray(input)) return undefined;
  const value = (input as Record<string, unknown>)[field];
  if (typeof value === "string") return value;
  for (const nested of Object.values(input)) {
    if (typeof nested === "object" && nested !== null && !Array.isArray(nested)) {
      const found = tokenIn(nested, field);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}
