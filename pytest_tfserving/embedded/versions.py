"""Version directories as TF Serving's FileSystemStoragePathSource reads them (tag 2.19.1).

A child of the base path is a version when its name parses as an int64 the way ``absl::SimpleAtoi``
parses it: surrounding ASCII whitespace, an optional sign, decimal digits. So ``00000123`` is version
123, and it is loaded *from* ``00000123/`` (the directory's own name, never a rebuilt ``123/``). When
two names give the same number the one sorting last wins, as upstream (it logs a warning). Which
versions are wanted follows the model's version policy: the newest N (``latest``), every version
(``all``), or the listed ones (``specific``; a listed ``123/`` is found directly, else through the
parsed names). Pure functions over names, plus one directory listing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from pytest_tfserving.serving.spec import VersionPolicy

log = logging.getLogger("pytest_tfserving.embedded")

_INT64_MAX = 2**63 - 1
_WHITESPACE = " \t\n\v\f\r"


def parse_version(name: str) -> int | None:
    """The version number a directory name stands for, or None (``absl::SimpleAtoi`` into int64)."""
    text = name.strip(_WHITESPACE)
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    value = int(text)
    if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
        return None
    return value


def index_by_version(children: Iterable[str]) -> dict[int, str]:
    """Version -> directory name; children are taken in sorted order and a later duplicate wins."""
    found: dict[int, str] = {}
    for child in sorted(children):
        version = parse_version(child)
        if version is None:
            continue
        if version in found:
            log.warning(
                "Duplicate version directories detected. Version %d will be loaded from %s, %s will be "
                "ignored.",
                version,
                child,
                found[version],
            )
        found[version] = child
    return found


def aspired_children(policy: VersionPolicy, children: Iterable[str]) -> dict[int, str]:
    """Version -> directory name of every version ``policy`` wants among ``children``."""
    names = list(children)
    if policy.kind == "specific":
        direct = {str(v) for v in policy.versions}
        if direct <= set(names):  # upstream's fast path: every listed version under its plain name
            return {v: str(v) for v in policy.versions}
        by_version = index_by_version(names)
        return {v: by_version[v] for v in sorted(by_version) if v in policy.versions}
    by_version = index_by_version(names)
    if policy.kind == "all":
        return by_version
    newest = sorted(by_version)[-max(1, policy.num_versions) :]
    return {v: by_version[v] for v in newest}


def aspired_versions(policy: VersionPolicy, base_path: Path, servable: str) -> dict[int, Path]:
    """Version -> directory to load it from, for the versions ``policy`` wants under ``base_path``.

    Every child counts, as upstream lists children without checking they are directories (a file
    named like a version is aspired and then fails to load, as it does there)."""
    try:
        children = [p.name for p in base_path.iterdir()]
    except OSError:
        return {}
    wanted = aspired_children(policy, children)
    if not wanted:
        log.warning(
            "No versions of servable %s found under base path %s. Did you forget to name your leaf "
            "directory as a number (eg. '/1/')?",
            servable,
            base_path,
        )
    return {version: base_path / name for version, name in wanted.items()}
