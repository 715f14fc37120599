"""Window k of every load process merged into one window, whichever engine ran the processes.

Our own worker processes (``load.workers``) and Locust workers (``load.locust_engine``) both cut the
same ``WindowRecord``s on the same grid; the parent hands each one in as it arrives and gets window k
back, merged, once every process has sent its window k. A process that falls behind the others is
named (``behind``), so a dead or stalled worker is an error, never a smaller window.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from pytest_tfserving.load.loops import WindowRecord

BEHIND_WINDOWS = 2  # a process this many windows behind the leader has stalled or died


class WindowMerger:
    """Collects window records from ``sources`` (ids of the load processes) and merges window k of all."""

    def __init__(self, sources: Iterable[Hashable]) -> None:
        self.sources = frozenset(sources)
        if not self.sources:
            raise ValueError("need at least one load process to merge windows from")
        self._pending: dict[int, dict[Hashable, WindowRecord]] = {}
        self._sent: dict[Hashable, int] = dict.fromkeys(self.sources, 0)

    def add(self, source: Hashable, record: WindowRecord) -> WindowRecord | None:
        """Take ``source``'s record; returns the merged window once every source has sent that index."""
        if source not in self.sources:
            known = sorted(map(str, self.sources))
            raise ValueError(f"window from an unknown load process {source!r}; expected one of {known}")
        parts = self._pending.setdefault(record.index, {})
        if source in parts:
            raise ValueError(f"load process {source!r} sent window {record.index} twice")
        parts[source] = record
        self._sent[source] += 1
        if len(parts) < len(self.sources):
            return None
        del self._pending[record.index]
        merged, *others = parts.values()
        for part in others:
            merged.merge(part)
        return merged

    def behind(self, windows: int = BEHIND_WINDOWS) -> list[Hashable]:
        """The sources at least ``windows`` windows behind the one furthest ahead."""
        lead = max(self._sent.values())
        return sorted((s for s, n in self._sent.items() if lead - n >= windows), key=str)
