"""The trigger events as Python classes, built from the generated records."""

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from .errors import Failure

Fields = List[Tuple[str, str]]


def _dict(fields: Fields, lower: bool = False) -> Dict[str, str]:
    # A repeated name keeps its first value, as the Rust SDK's `field` does.
    out: Dict[str, str] = {}
    for name, value in fields:
        out.setdefault(name.lower() if lower else name, value)
    return out


def parse_json(text, what: str = "body") -> Any:
    """Parses JSON handed over by the host; bad JSON is the failure `InvalidJson`."""
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise Failure("InvalidJson", f"{what} is not JSON: {e}") from None


@dataclass
class Identity:
    """Who called, as verified by the host (API key owner or JWT claims)."""

    subject: str
    email: Optional[str] = None
    name: Optional[str] = None
    groups: List[str] = field(default_factory=list)
    scopes: List[str] = field(default_factory=list)

    @classmethod
    def _from(cls, w) -> Optional["Identity"]:
        if w is None:
            return None
        return cls(w.subject, w.email, w.name, list(w.groups), list(w.scopes))


@dataclass
class Request:
    """An HTTP request routed to the plugin. `headers` has lower-case names; `fields`
    keeps every (name, value) pair as received."""

    method: str
    path: str
    params: Dict[str, str]
    query: Dict[str, str]
    headers: Dict[str, str]
    body: bytes
    identity: Optional[Identity]
    header_fields: Fields = field(default_factory=list)

    @classmethod
    def _from(cls, w) -> "Request":
        return cls(
            w.method,
            w.path,
            _dict(w.params),
            _dict(w.query),
            _dict(w.headers, lower=True),
            bytes(w.body),
            Identity._from(w.identity),
            list(w.headers),
        )

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; bad JSON is the failure `InvalidJson`."""
        return parse_json(self.body)


@dataclass
class QueueMessage:
    id: str
    queue: str
    body: str
    attributes: Dict[str, str]
    group_id: Optional[str]
    receive_count: int
    sent_at: int

    @classmethod
    def _from(cls, w) -> "QueueMessage":
        return cls(
            w.id, w.queue, w.body, _dict(w.attributes), w.group_id, w.receive_count, w.sent_at
        )

    def json(self) -> Any:
        return parse_json(self.body, f"message {self.id}")


@dataclass
class Notification:
    id: str
    topic: str
    subject: Optional[str]
    body: str
    attributes: Dict[str, str]

    @classmethod
    def _from(cls, w) -> "Notification":
        return cls(w.id, w.topic, w.subject, w.body, _dict(w.attributes))

    def json(self) -> Any:
        return parse_json(self.body, f"notification {self.id}")


@dataclass
class BusEvent:
    id: str
    bus: str
    source: str
    detail_type: str
    detail: Any
    time: int

    @classmethod
    def _from(cls, w) -> "BusEvent":
        return cls(w.id, w.bus, w.source, w.detail_type, parse_json(w.detail, "detail"), w.time)


@dataclass
class Tick:
    """A schedule's tick; `input` is the schedule's fixed JSON input, parsed."""

    schedule: str
    scheduled_at: int
    input: Any

    @classmethod
    def _from(cls, w) -> "Tick":
        return cls(w.schedule, w.scheduled_at, parse_json(w.input, "input") if w.input else None)


@dataclass
class Task:
    """A workflow Task state's input and context (`$$`), parsed."""

    execution_id: str
    state: str
    input: Any
    context: Any

    @classmethod
    def _from(cls, w) -> "Task":
        return cls(
            w.execution_id,
            w.state,
            parse_json(w.input, "input"),
            parse_json(w.context, "context"),
        )
