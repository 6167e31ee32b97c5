"""orquesta's Python SDK: typed helpers over the bindings componentize-py generates from
`wit/plugin.wit` (docs/PLUGINS.md).

A plugin registers one function per trigger kind it answers::

    import orquesta

    @orquesta.on_http
    def handle(req: orquesta.Request) -> orquesta.Response:
        return orquesta.Response.json({"hello": req.query.get("name", "world")})

and is built with `orquesta build app.py -o app.wasm`, which exports the handler
interface of each `@orquesta.on_KIND` it finds (and only those). A handler raises
`orquesta.Failure(error, cause)` to fail with the contract's `failure`; a host call the
tenant did not grant raises `orquesta.HostError`, which becomes a failure named as the
Rust SDK names it (`Denied`, `Unavailable`, `Invalid`, `Timeout`, `HostFailed`) when not
caught. Any other exception becomes the failure `UnhandledException`.

Capabilities are submodules: `kv`, `blob`, `http`, `sql`, `config`, `log`, `notify`,
`messaging`. Importing one needs the bindings, so these run inside a component only.
"""

from .errors import Failure, HostError
from .events import (
    BusEvent,
    Identity,
    Notification,
    QueueMessage,
    Request,
    Task,
    Tick,
)
from .handlers import on_bus, on_http, on_queue, on_schedule, on_task, on_topic
from .responses import Batch, Response

__all__ = [
    "Batch",
    "BusEvent",
    "Failure",
    "HostError",
    "Identity",
    "Notification",
    "QueueMessage",
    "Request",
    "Response",
    "Task",
    "Tick",
    "on_bus",
    "on_http",
    "on_queue",
    "on_schedule",
    "on_task",
    "on_topic",
]
