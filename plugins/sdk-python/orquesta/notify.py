"""Publishing to the tenant's topics (WIT `notify`)."""

from typing import Any, Dict, Optional

from wit_world.imports import notify as _notify

from .errors import host_call
from .responses import dumps


def publish(topic: str, body: Any, subject: Optional[str] = None, attributes: Optional[Dict[str, str]] = None) -> str:
    """Publishes `body` (a str as is, anything else as JSON); returns the message id."""
    text = body if isinstance(body, str) else dumps(body)
    return host_call(_notify.publish, topic, subject, text, list((attributes or {}).items()))
