"""Keep the garbage collector's full passes off the measured event loop.

A test process that imported TensorFlow and built a model holds hundreds of thousands of long-lived
objects, and a full (generation 2) collection walks every one of them: 0.35 s here with ResNet50 built.
The load loop's own garbage can trigger such a pass mid-run, and then every request in flight waits for
it: latency that the server never had. ``frozen_heap`` moves the objects that exist before the run
into the permanent generation (``gc.freeze``), so passes during the run visit only what the run itself
allocates; they return to the collector afterwards. Freezing and unfreezing are list splices, not walks.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0  # nested or concurrent runs: the first in freezes, the last out unfreezes


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    global _depth
    with _lock:
        if _depth == 0:
            gc.freeze()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.unfreeze()
