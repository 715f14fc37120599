"""Readiness as TF Serving defines it: ``GET /v1/models/{name}`` reports a version AVAILABLE."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable


def version_states(body: bytes) -> list[str]:
    """States of all versions in a model status reply (e.g. ["AVAILABLE"]); ValueError if not JSON."""
    status = json.loads(body.decode())
    return [str(v.get("state", "")) for v in status.get("model_version_status", [])]


def has_available_version(body: bytes) -> bool:
    return "AVAILABLE" in version_states(body)


def model_state(rest_url: str, name: str, timeout_s: float = 2.0) -> list[str]:
    """States of all versions of ``name`` (e.g. ["AVAILABLE"]); raises OSError/ValueError while starting."""
    with urllib.request.urlopen(f"{rest_url}/v1/models/{name}", timeout=timeout_s) as response:
        return version_states(response.read())


def models_available(rest_url: str, names: Iterable[str], timeout_s: float = 2.0) -> bool:
    """True when every model has at least one AVAILABLE version; connection errors mean "not yet"."""
    try:
        return all("AVAILABLE" in model_state(rest_url, name, timeout_s) for name in names)
    except (OSError, ValueError, urllib.error.URLError):
        return False
