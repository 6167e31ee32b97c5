"""The plugin's config from its tenant file, and its secrets (WIT `config`)."""

from typing import Dict, Optional

from wit_world.imports import config as _config


def get(key: str, default: Optional[str] = None) -> Optional[str]:
    value = _config.get(key)
    return default if value is None else value


def get_all() -> Dict[str, str]:
    return dict(_config.get_all())


def secret(name: str) -> Optional[str]:
    """A secret the tenant granted; never log it."""
    return _config.secret(name)
