"""SQL on the databases the tenant names (WIT `sql`). Parameters are always bound:
Python values map to SQL values (None, bool, int, float, str, bytes)."""

from typing import Any, Dict, List, Sequence

from wit_world.imports import sql as _sql

from .errors import host_call


def _value(v: Any):
    if v is None:
        return _sql.Value_Null()
    if isinstance(v, bool):
        return _sql.Value_Boolean(v)
    if isinstance(v, int):
        return _sql.Value_Integer(v)
    if isinstance(v, float):
        return _sql.Value_Real(v)
    if isinstance(v, str):
        return _sql.Value_Text(v)
    if isinstance(v, (bytes, bytearray)):
        return _sql.Value_Blob(bytes(v))
    raise TypeError(f"cannot bind a {type(v).__name__} as a SQL value")


def _python(v) -> Any:
    return None if isinstance(v, _sql.Value_Null) else v.value


def query(database: str, statement: str, params: Sequence[Any] = ()) -> List[Dict[str, Any]]:
    """The rows, each a dict by column name."""
    rows = host_call(_sql.query, database, statement, [_value(p) for p in params])
    return [dict(zip(rows.columns, (_python(v) for v in row))) for row in rows.rows]


def execute(database: str, statement: str, params: Sequence[Any] = ()) -> int:
    """Rows affected."""
    return host_call(_sql.execute, database, statement, [_value(p) for p in params])
