"""Another session for the identity tests: a fresh process exports the seeded tiny model twice (the
second time Keras numbers its layers ``conv2d_2``... and TF its functions differently), converts
each export to the TFLite variants, and builds one variant from the second export into a shared
cache. Prints JSON with the paths and that build's id.

Usage: python identity_worker.py OUT_DIR CACHE_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pytest_tfserving.models.tflite import convert, generated_dataset, input_signature
from pytest_tfserving.models.tiny import build_tiny_cnn, export_savedmodel
from pytest_tfserving.models.variants import build_info, build_model_variant

TFLITE_VARIANTS = ("fp16", "int8-dynamic", "int8")


def export(out: Path) -> dict[str, str]:
    savedmodel = export_savedmodel(build_tiny_cnn(seed=0), out / "savedmodel")
    paths = {"fp32": str(savedmodel)}
    for variant in TFLITE_VARIANTS:
        samples = generated_dataset(input_signature(savedmodel), 0) if variant == "int8" else None
        path = out / f"{variant}.tflite"
        path.write_bytes(convert(savedmodel, variant, samples))
        paths[variant] = str(path)
    return paths


def main() -> None:
    out, cache = Path(sys.argv[1]), Path(sys.argv[2])
    first = export(out / "first")
    renamed = export(out / "renamed")
    spec = build_model_variant(Path(renamed["fp32"]), name="tiny", variant="int8-dynamic", cache_dir=cache)
    build = {"base_path": str(spec.base_path), "build_id": build_info(spec)["build_id"]}
    print(json.dumps({"first": first, "renamed": renamed, "build": build}))


if __name__ == "__main__":
    main()
