"""What a handler returns: `Response` for HTTP, any JSON value for the other triggers,
`Batch` for a queue batch with failed messages, `None` for nothing to report."""

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, List, Optional, Tuple


def dumps(value: Any) -> str:
    """Compact JSON, as the Rust SDK writes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass
class Response:
    """An HTTP answer."""

    status: int = 200
    body: bytes = b""
    headers: List[Tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, value: Any, status: int = 200, headers: Optional[Iterable] = None) -> "Response":
        return cls(
            status,
            dumps(value).encode(),
            [("content-type", "application/json")] + list(headers or []),
        )

    @classmethod
    def text(cls, text: str, status: int = 200, headers: Optional[Iterable] = None) -> "Response":
        return cls(
            status,
            text.encode(),
            [("content-type", "text/plain; charset=utf-8")] + list(headers or []),
        )


@dataclass
class Batch:
    """For a queue batch: the ids of the messages that failed and must come back."""

    failed: List[str] = field(default_factory=list)
