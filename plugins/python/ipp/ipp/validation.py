"""Which counters (`mostradores`) a request names, and which of them the configuration
table in Databricks knows."""

import json

from ipp import MAX_MOSTRADORES
from ipp.databricks import databricks, setting
from ipp.errors import HttpError
from ipp.jsonpath import at


def requested(body: bytes) -> list:
    """The counters named in a request body; empty means the automatic mode."""
    if not body.strip():
        return []
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise HttpError(400, "ValidationError", f"body is not JSON: {e}") from None
    items = doc.get("mostradores") if isinstance(doc, dict) else None
    if items is None:
        return []
    if not isinstance(items, list):
        raise HttpError(400, "ValidationError", "mostradores must be an array of counter numbers")
    if not items:
        raise HttpError(400, "ValidationError", "mostradores is empty: omit it to validate every active counter")
    if len(items) > MAX_MOSTRADORES:
        raise HttpError(400, "ValidationError", f"at most {MAX_MOSTRADORES} mostradores per request")
    out = []
    for item in items:
        if isinstance(item, str):
            text = item.strip()
        elif isinstance(item, int) and not isinstance(item, bool) and item >= 0:
            text = str(item)
        else:
            text = json.dumps(item)
        if not text or len(text) > 20 or not (text.isascii() and text.isdigit()):
            raise HttpError(400, "ValidationError", f"mostrador {json.dumps(item)} is not a counter number")
        if text not in out:
            out.append(text)
    return out


class Validation:
    def __init__(self, automatic: bool, valid: list, invalid: list):
        self.automatic, self.valid, self.invalid = automatic, valid, invalid

    def to_json(self) -> dict:
        v, i = len(self.valid), len(self.invalid)
        total = v + i
        if v == 0:
            status, message = "none_valid", "no counter has a configuration"
        elif i == 0:
            status, message = "all_valid", f"all {v} counters have a configuration"
        else:
            status, message = "partial_valid", f"{v} of {total} counters have a configuration"
        return {
            "status": status,
            "message": message,
            "mode": "automatic" if self.automatic else "manual",
            "validClients": self.valid,
            "invalidClients": self.invalid,
            "total": total,
            "validated": v,
        }


def validate(wanted: list) -> Validation:
    table = setting("config_table")
    if not wanted:
        statement = f"SELECT DISTINCT mostrador FROM {table} WHERE mostrador IS NOT NULL"
        parameters = []
    else:
        # Bound parameters, never spliced into the SQL text.
        names = ", ".join(f":m{i}" for i in range(len(wanted)))
        statement = f"SELECT mostrador FROM {table} WHERE mostrador IN ({names})"
        parameters = [{"name": f"m{i}", "value": m, "type": "STRING"} for i, m in enumerate(wanted)]
    answer = databricks("POST", "/api/2.0/sql/statements", {
        "warehouse_id": setting("warehouse_id"),
        "statement": statement,
        "parameters": parameters,
        "wait_timeout": "30s",
        "format": "JSON_ARRAY",
    })
    state = at(answer, "status", "state")
    state = state if isinstance(state, str) else "UNKNOWN"
    if state != "SUCCEEDED":
        why = at(answer, "status", "error", "message")
        why = why if isinstance(why, str) else "no reason given"
        raise HttpError(502, "DatabricksError", f"the validation query ended {state}: {why}")
    found = []
    rows = at(answer, "result", "data_array")
    for row in rows if isinstance(rows, list) else []:
        first = at(row, 0)
        if isinstance(first, str):
            found.append(first)
        elif isinstance(first, (int, float)) and not isinstance(first, bool):
            found.append(json.dumps(first))
    if not wanted:
        return Validation(True, found, [])
    return Validation(False, [m for m in wanted if m in found], [m for m in wanted if m not in found])
