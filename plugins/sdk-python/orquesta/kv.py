"""Key-value storage scoped to the tenant and plugin (WIT `kv`). Values are bytes; `str`
values are stored as UTF-8 and the `*_json` helpers store JSON text."""

import json
from typing import Any, List, Optional, Tuple

from wit_world.imports import kv as _kv

from .errors import host_call
from .responses import dumps

Entry = _kv.Entry  # key, value (bytes), version


def _bytes(value) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def get(bucket: str, key: str) -> Optional[Entry]:
    """The entry (value and version), or None when absent or expired."""
    return host_call(_kv.get, bucket, key)


def get_json(bucket: str, key: str) -> Optional[Tuple[Any, int]]:
    """The value parsed as JSON and its version, or None."""
    entry = get(bucket, key)
    return None if entry is None else (json.loads(entry.value), entry.version)


def set(bucket: str, key: str, value, ttl_ms: Optional[int] = None) -> int:
    """Stores `value`; returns the new version."""
    return host_call(_kv.set, bucket, key, _bytes(value), ttl_ms)


def set_json(bucket: str, key: str, value: Any, ttl_ms: Optional[int] = None) -> int:
    return set(bucket, key, dumps(value), ttl_ms)


def delete(bucket: str, key: str) -> bool:
    return host_call(_kv.delete, bucket, key)


def list_keys(bucket: str, prefix: str = "", cursor: Optional[str] = None, limit: int = 1000) -> Tuple[List[str], Optional[str]]:
    """One page of keys and the cursor of the next (None at the end)."""
    page = host_call(_kv.list_keys, bucket, prefix, cursor, limit)
    return list(page.keys), page.cursor


def compare_and_swap(bucket: str, key: str, expected: int, value, ttl_ms: Optional[int] = None) -> Optional[int]:
    """Writes only if the version is `expected` (0: absent); the new version, or None."""
    return host_call(_kv.compare_and_swap, bucket, key, expected, _bytes(value), ttl_ms)


def increment(bucket: str, key: str, delta: int = 1) -> int:
    return host_call(_kv.increment, bucket, key, delta)
