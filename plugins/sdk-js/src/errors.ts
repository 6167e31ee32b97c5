// Failures a handler throws, and the host's errors a capability call throws.

/** The names the Rust SDK gives each `host-error` case as a failure, so a workflow's
 * `Retry`/`Catch` rules match every language's plugins alike. */
const FAILURE_NAMES: Record<string, string> = {
  denied: "Denied",
  unavailable: "Unavailable",
  invalid: "Invalid",
  timeout: "Timeout",
  failed: "HostFailed",
};

/** The contract's `failure`: `error` is a short machine name (`ValidationError`) that
 * workflow `Retry`/`Catch` rules match; `cause` the human explanation. */
export class Failure extends Error {
  constructor(
    public readonly error: string,
    public readonly cause: string = "",
  ) {
    super(`${error}: ${cause}`);
    this.name = "Failure";
  }
}

/** A capability call the host refused or could not make. `kind` is the WIT case:
 * `denied`, `unavailable`, `invalid`, `timeout` or `failed`. */
export class HostError extends Error {
  constructor(
    public readonly kind: string,
    public readonly detail: string,
  ) {
    super(`${kind}: ${detail}`);
    this.name = "HostError";
  }

  toFailure(): Failure {
    return new Failure(FAILURE_NAMES[this.kind] ?? "HostFailed", this.detail);
  }
}

/** Calls a generated import, turning its `err(host-error)` (thrown by the bindings as an
 * error whose `payload` is `{ tag, val }`) into a `HostError`. */
export function hostCall<T>(call: () => T): T {
  try {
    return call();
  } catch (e) {
    const payload = (e as { payload?: { tag?: unknown; val?: unknown } } | null)?.payload;
    if (payload && typeof payload.tag === "string") {
      throw new HostError(payload.tag, String(payload.val ?? ""));
    }
    throw e;
  }
}

/** The cloud's names for a refused workflow task answer (SendTaskSuccess, ...), as the
 * Rust SDK's `TaskError::name` gives them. */
const TASK_ERROR_NAMES: Record<string, string> = {
  "invalid-token": "InvalidToken",
  "task-does-not-exist": "TaskDoesNotExist",
  "task-timed-out": "TaskTimedOut",
  "invalid-output": "InvalidOutput",
};

/** A refused answer to a workflow task (WIT `task-error`): a `Failure` named as the
 * cloud names it (`TaskTimedOut`, ...; a host error as `Denied`, ...), so uncaught it
 * fails the handler so, as the Rust SDK's `?` does. `kind` is the WIT case (`host` for a
 * host error; then `hostKind` is its case). */
export class TaskError extends Failure {
  constructor(
    public readonly kind: string,
    error: string,
    cause: string,
    public readonly hostKind?: string,
  ) {
    super(error, cause);
    this.name = "TaskError";
  }
}

/** Calls a generated `workflow-tasks` import, turning its thrown `task-error` into a
 * `TaskError`. */
export function taskCall<T>(call: () => T): T {
  try {
    return call();
  } catch (e) {
    const payload = (e as { payload?: { tag?: unknown; val?: unknown } } | null)?.payload;
    if (payload && typeof payload.tag === "string") {
      if (payload.tag === "host") {
        const host = payload.val as { tag?: unknown; val?: unknown } | undefined;
        const kind = typeof host?.tag === "string" ? host.tag : "failed";
        throw new TaskError("host", FAILURE_NAMES[kind] ?? "HostFailed", String(host?.val ?? ""), kind);
      }
      const name = TASK_ERROR_NAMES[payload.tag] ?? "HostFailed";
      throw new TaskError(payload.tag, name, String(payload.val ?? ""));
    }
    throw e;
  }
}
