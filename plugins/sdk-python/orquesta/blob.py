"""Objects by bucket and key, scoped to the tenant (WIT `blob`)."""

from typing import List, Optional, Tuple

from wit_world.imports import blob as _blob

from .errors import host_call


def get(bucket: str, key: str) -> Optional[bytes]:
    return host_call(_blob.get, bucket, key)


def put(bucket: str, key: str, data) -> None:
    host_call(_blob.put, bucket, key, data.encode() if isinstance(data, str) else bytes(data))


def delete(bucket: str, key: str) -> bool:
    return host_call(_blob.delete, bucket, key)


def list_keys(bucket: str, prefix: str = "", cursor: Optional[str] = None, limit: int = 1000) -> Tuple[List[str], Optional[str]]:
    page = host_call(_blob.list_keys, bucket, prefix, cursor, limit)
    return list(page.keys), page.cursor
