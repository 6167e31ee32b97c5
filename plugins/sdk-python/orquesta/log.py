"""Structured logs into the host's, tagged with tenant, plugin and invocation (WIT
`log`): `log.info("job started", job_id=job_id)`."""

from wit_world.imports import log as _log


def _emit(level, message: str, fields) -> None:
    _log.log(level, message, [(k, str(v)) for k, v in fields.items()])


def trace(message: str, **fields) -> None:
    _emit(_log.Level.TRACE, message, fields)


def debug(message: str, **fields) -> None:
    _emit(_log.Level.DEBUG, message, fields)


def info(message: str, **fields) -> None:
    _emit(_log.Level.INFO, message, fields)


def warn(message: str, **fields) -> None:
    _emit(_log.Level.WARN, message, fields)


def error(message: str, **fields) -> None:
    _emit(_log.Level.ERROR, message, fields)
