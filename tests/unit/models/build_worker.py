"""Build one variant in a separate process (for the crash and concurrency tests); prints its result.

Usage: python build_worker.py SAVEDMODEL CACHE_DIR VARIANT SAMPLES
SAMPLES > 0 gives a caller representative dataset of that many samples (a longer calibration).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from pytest_tfserving.models.variants import build_info, build_model_variant


def main() -> None:
    source, cache_dir, variant, count = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    dataset = None
    if count > 0:
        rng = np.random.default_rng(1)
        dataset = [{"images": rng.random((1, 8, 8, 3), dtype=np.float32)} for _ in range(count)]
    spec = build_model_variant(
        source, name="tiny", variant=variant, cache_dir=cache_dir, representative_dataset=dataset
    )
    print(json.dumps({"base_path": str(spec.base_path), "build_id": build_info(spec)["build_id"]}))


if __name__ == "__main__":
    main()
