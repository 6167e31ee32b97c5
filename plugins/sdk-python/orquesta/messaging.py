"""Queues, the event bus and workflow executions (WIT `messaging`). Bodies that are not
`str` are sent as JSON."""

from typing import Any, Dict, Optional

from wit_world.imports import messaging as _m

from .errors import host_call
from .responses import dumps


def _text(body: Any) -> str:
    return body if isinstance(body, str) else dumps(body)


def send(queue: str, body: Any, delay_seconds: int = 0, attributes: Optional[Dict[str, str]] = None, group_id: Optional[str] = None, deduplication_id: Optional[str] = None) -> str:
    options = _m.SendOptions(delay_seconds, list((attributes or {}).items()), group_id, deduplication_id)
    return host_call(_m.send, queue, _text(body), options)


def put_event(bus: str, source: str, detail_type: str, detail: Any) -> str:
    return host_call(_m.put_event, bus, source, detail_type, _text(detail))


def start_execution(workflow: str, input: Any, name: Optional[str] = None) -> str:
    return host_call(_m.start_execution, workflow, _text(input), name)
