"""Failures a handler raises, and the host's errors a capability call raises."""

# The names the Rust SDK gives each `host-error` case as a failure, so a workflow's
# `Retry`/`Catch` rules match either language's plugins alike.
_FAILURE_NAMES = {
    "denied": "Denied",
    "unavailable": "Unavailable",
    "invalid": "Invalid",
    "timeout": "Timeout",
    "failed": "HostFailed",
}


class Failure(Exception):
    """The contract's `failure`: `error` is a short machine name (`ValidationError`)
    that workflow `Retry`/`Catch` rules match; `cause` the human explanation."""

    def __init__(self, error: str, cause: str = ""):
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


class HostError(Exception):
    """A capability call the host refused or could not make. `kind` is the WIT case:
    `denied`, `unavailable`, `invalid`, `timeout` or `failed`."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message

    def to_failure(self) -> Failure:
        return Failure(_FAILURE_NAMES.get(self.kind, "HostFailed"), self.message)


def host_call(fn, *args):
    """Calls a generated import, turning its `Err(host-error)` into `HostError`."""
    # Imported here: the bindings exist only inside a component.
    from componentize_py_types import Err

    try:
        return fn(*args)
    except Err as e:
        raise _host_error(e.value) from None


def _host_error(value) -> HostError:
    # The generated cases are `HostError_Denied`, ..., each with `.value`.
    kind = type(value).__name__.rsplit("_", 1)[-1].lower()
    return HostError(kind, str(getattr(value, "value", value)))
