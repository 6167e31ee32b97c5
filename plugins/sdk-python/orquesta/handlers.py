"""Registering a function per trigger kind, and the classes componentize-py calls.

`orquesta build` writes the component's entry module: it imports the app (whose
`@orquesta.on_KIND` decorators register here), calls `check_exported` with the kinds it
exported, and binds each exported interface's class (`HttpHandler`, ...) to `exported`'s.
"""

import traceback
from typing import Callable, Dict

from . import events as ev
from .errors import Failure, HostError

KINDS = ("http", "queue", "topic", "bus", "schedule", "task")

_registered: Dict[str, Callable] = {}


def _register(kind: str):
    def decorator(fn: Callable) -> Callable:
        if kind in _registered:
            raise RuntimeError(
                f"two {kind} handlers: {_registered[kind].__name__} and {fn.__name__}"
            )
        _registered[kind] = fn
        return fn

    return decorator


on_http = _register("http")
on_queue = _register("queue")
on_topic = _register("topic")
on_bus = _register("bus")
on_schedule = _register("schedule")
on_task = _register("task")


def check_exported(kinds) -> None:
    """Runs at build time (componentize-py's pre-initialisation): the exported handler
    interfaces and the registered functions must be the same kinds, so a plugin never
    exports a handler it has no function for, nor registers one no trigger can reach."""
    kinds = set(kinds)
    missing = sorted(kinds - set(_registered))
    extra = sorted(set(_registered) - kinds)
    problems = [
        f"the build exports {kind} but the app registers no function for it (@orquesta.on_{kind})"
        for kind in missing
    ] + [
        f"the app registers {kind} but the build does not export it: add --trigger {kind} to orquesta build"
        for kind in extra
    ]
    if problems:
        raise RuntimeError("; ".join(problems))


def _call(kind: str, make_event: Callable, to_result: Callable):
    """Runs the registered function on the event `make_event` builds (inside, so a bad
    JSON input is the handler's `InvalidJson` failure) and converts its answer."""
    # Imported here: the bindings exist only inside a component.
    from componentize_py_types import Err
    from wit_world.imports.types import Failure as WitFailure

    try:
        return to_result(_registered[kind](make_event()))
    except Failure as f:
        raise Err(WitFailure(f.error, f.cause)) from None
    except HostError as e:
        f = e.to_failure()
        raise Err(WitFailure(f.error, f.cause)) from None
    except (Err, MemoryError):
        # A MemoryError is left to trap the instance: the host saw its memory refused
        # and names it `memory-limit`, as for a Rust plugin.
        raise
    except Exception as e:  # the plugin's bug: a failure naming it, not a trap
        where = traceback.extract_tb(e.__traceback__)[-1:]
        at = f" at {where[0].filename}:{where[0].lineno}" if where else ""
        raise Err(WitFailure("UnhandledException", f"{type(e).__name__}: {e}{at}")) from None


def _response(value):
    from wit_world.imports import events as w

    from .responses import Batch, Response, dumps

    if isinstance(value, Response):
        return w.Response_Http(w.HttpResponse(value.status, list(value.headers), bytes(value.body)))
    if isinstance(value, Batch):
        return w.Response_Batch(list(value.failed))
    if value is None:
        return w.Response_None_()
    return w.Response_Json(dumps(value))


def _http_response(value):
    from .responses import Response

    if not isinstance(value, Response):
        # An HTTP answer is a `Response`; a dict or list is answered as JSON with 200.
        value = Response.json(value)
    return _response(value)


class exported:
    """The classes the entry module binds to the generated export names."""

    class HttpHandler:
        def handle(self, request):
            return _call("http", lambda: ev.Request._from(request), _http_response)

    class QueueHandler:
        def handle(self, messages):
            return _call("queue", lambda: [ev.QueueMessage._from(m) for m in messages], _response)

    class TopicHandler:
        def handle(self, notification):
            return _call("topic", lambda: ev.Notification._from(notification), _response)

    class BusHandler:
        def handle(self, event):
            return _call("bus", lambda: ev.BusEvent._from(event), _response)

    class ScheduleHandler:
        def handle(self, tick):
            return _call("schedule", lambda: ev.Tick._from(tick), _response)

    class TaskHandler:
        def handle(self, task):
            return _call("task", lambda: ev.Task._from(task), _response)
