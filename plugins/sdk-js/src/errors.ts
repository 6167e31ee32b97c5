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
