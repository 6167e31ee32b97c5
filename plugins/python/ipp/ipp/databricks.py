"""The plugin's settings and the Databricks REST client."""

import json
import math

from orquesta import config, http

from ipp.errors import HttpError
from ipp.jsonpath import text, unsigned


def setting(name: str) -> str:
    value = config.get(name)
    if value is None:
        raise HttpError(500, "ConfigError", f"{name} is not configured for the ipp plugin")
    return value


def number_setting(name: str) -> int:
    value = setting(name).strip()
    if not value.isascii() or not value.isdigit():
        raise HttpError(500, "ConfigError", f"{name} must be a Databricks job id")
    return int(value)


def factor() -> float:
    value = config.get("factor", "1.15")
    try:
        f = float(value.strip())
    except ValueError:
        f = math.nan
    if not (math.isfinite(f) and f > 0):
        raise HttpError(500, "ConfigError", f"factor {json.dumps(value)} must be a positive number")
    return f


def bucket() -> str:
    return config.get("bucket", "ipp")


def databricks(method: str, path: str, body=None):
    """Calls the workspace with the token; an error status becomes a `DatabricksError`
    with Databricks' own error code and message."""
    base = setting("databricks_url")
    token = config.secret("databricks_token")
    if token is None:
        raise HttpError(500, "ConfigError", "secret databricks_token is not granted")
    headers = {"authorization": f"Bearer {token}"}
    payload = b""
    if body is not None:
        headers["content-type"] = "application/json"
        payload = json.dumps(body, separators=(",", ":")).encode()
    answer = http.send(method, base.rstrip("/") + path, headers, payload, timeout_ms=30_000)
    doc = answer.json()
    if answer.status >= 400:
        code = text(doc, "error_code") or "UNKNOWN"
        message = text(doc, "message") or ""
        raise HttpError(502, "DatabricksError", f"Databricks answered {answer.status} {code}: {message}")
    if doc is None:
        raise HttpError(502, "DatabricksError", "Databricks answered with a body that is not JSON")
    return doc


def run_id_of(answer) -> int:
    run_id = unsigned(answer, "run_id")
    if run_id is None:
        raise HttpError(502, "DatabricksError", "run-now answered without a run_id")
    return run_id
