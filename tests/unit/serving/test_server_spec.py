"""ServerSpec.validate: each invalid deployment is refused with a message that names the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_tfserving.serving.spec import (
    BatchingSpec,
    ModelSpec,
    ServerSpec,
    SpecError,
    VersionPolicy,
)


def _spec(**settings: Any) -> ServerSpec:
    return ServerSpec.single("tiny", "/models/tiny", **settings)


def test_single_builds_a_valid_spec() -> None:
    spec = _spec(intra_op=2, inter_op=2)
    assert spec.validate() is spec
    assert spec.models == (ModelSpec("tiny", Path("/models/tiny")),)
    assert hash(spec) == hash(_spec(intra_op=2, inter_op=2))


def test_single_turns_tflite_on_for_tflite_variants() -> None:
    assert ServerSpec.single("q", "/m", variant="int8").validate().prefer_tflite_model
    assert not ServerSpec.single("q", "/m").prefer_tflite_model


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ServerSpec(models=()), r"no models; add one, e\.g\. ServerSpec\.single"),
        (
            ServerSpec(models=(ModelSpec("m", Path("/a")), ModelSpec("m", Path("/b")))),
            "'m' appears twice; every served model needs its own name",
        ),
        (
            ServerSpec.single("m", "/a", variant="int4"),  # type: ignore[arg-type]
            "unknown variant 'int4'; valid variants: fp32, fp16, int8-dynamic, int8",
        ),
        (ServerSpec.single("a/b", "/a"), "not usable in a URL path"),
        (
            ServerSpec.single("m", "/a", version_policy=VersionPolicy("specific")),
            r"needs versions, e\.g\. versions=\(1,\)",
        ),
        (
            ServerSpec.single("m", "/a", version_policy=VersionPolicy("latest", num_versions=0)),
            "set num_versions >= 1",
        ),
        (_spec(session_parallelism=4, intra_op=8, inter_op=8), "set either session_parallelism"),
        (_spec(session_parallelism=4, inter_op=8), "ignores --tensorflow_session_parallelism"),
        (_spec(batching=BatchingSpec()), "set enable_batching=True"),
        (
            _spec(
                enable_batching=True,
                batching=BatchingSpec(max_batch_size=32, allowed_batch_sizes=(16, 8, 32)),
            ),
            "strictly increasing",
        ),
        (
            _spec(
                enable_batching=True, batching=BatchingSpec(max_batch_size=32, allowed_batch_sizes=(8, 16))
            ),
            "must end at max_batch_size=32; append 32",
        ),
        (_spec(enable_batching=True, batching=BatchingSpec(max_batch_size=0)), "max_batch_size=0"),
        (_spec(enable_batching=True, batching=BatchingSpec(num_batch_threads=0)), "num_batch_threads=0"),
        (_spec(intra_op=-1), "intra_op=-1: thread counts cannot be negative"),
        (_spec(inter_op=-2), "inter_op=-2"),
        (_spec(session_parallelism=-1), "session_parallelism=-1"),
        (_spec(rest_api_num_threads=-1), "rest_api_num_threads=-1: set it to 1 or more"),
        (_spec(grpc_max_threads=0), "grpc_max_threads=0"),
        (_spec(num_tflite_pools=-3), "num_tflite_pools=-3"),
        (_spec(num_tflite_interpreters_per_pool=0), "num_tflite_interpreters_per_pool=0"),
        (
            ServerSpec(models=(ModelSpec("q", Path("/q"), variant="fp16"),)),
            "--prefer_tflite_model=true; set prefer_tflite_model=True",
        ),
        (
            ServerSpec(models=(ModelSpec("q", Path("/q"), variant="int8-dynamic"),)),
            "set prefer_tflite_model=True",
        ),
        (
            ServerSpec.single("q", "/q", variant="int8", prefer_tflite_model=False),
            "set prefer_tflite_model=True",
        ),
        (_spec(prometheus_path="metrics"), "must start with '/'"),
        (_spec(extra_flags=("enable_batching",)), r"is not a flag \(a value must be joined to its flag"),
        (_spec(extra_flags=("--enable_batchng=true",)), "did you mean --enable_batching"),
        (_spec(extra_flags=("--tensorflow_inter_op_parallelism=4",)), r"set ServerSpec\.inter_op"),
    ],
)
def test_invalid_spec_names_the_fix(spec: ServerSpec, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        spec.validate()


def test_zero_threads_mean_tensorflow_default_and_are_valid() -> None:
    _spec(intra_op=0, inter_op=0).validate()
    _spec(session_parallelism=8, intra_op=0, inter_op=0).validate()
