"""Outbound HTTP to the hosts the tenant allows (WIT `http`). Any status is a successful
call; a refused host or a timeout raises `HostError`."""

import json as _json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from wit_world.imports import http as _http

from .errors import host_call
from .responses import dumps


@dataclass
class Answer:
    status: int
    headers: List[Tuple[str, str]]
    body: bytes

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        return next((v for n, v in self.headers if n.lower() == name), None)

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return _json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None


def send(method: str, url: str, headers: Optional[Dict[str, str]] = None, body=b"", json: Any = None, timeout_ms: Optional[int] = None) -> Answer:
    """Sends a request; `json=` sends a JSON body with its content type."""
    pairs = list((headers or {}).items())
    if json is not None:
        body = dumps(json)
        if not any(n.lower() == "content-type" for n, _ in pairs):
            pairs.append(("content-type", "application/json"))
    if isinstance(body, str):
        body = body.encode()
    answer = host_call(_http.send, _http.Request(method, url, pairs, bytes(body), timeout_ms))
    return Answer(answer.status, list(answer.headers), bytes(answer.body))


def get(url: str, headers: Optional[Dict[str, str]] = None, timeout_ms: Optional[int] = None) -> Answer:
    return send("GET", url, headers, timeout_ms=timeout_ms)


def post(url: str, json: Any = None, headers: Optional[Dict[str, str]] = None, timeout_ms: Optional[int] = None) -> Answer:
    return send("POST", url, headers, json=json, timeout_ms=timeout_ms)
