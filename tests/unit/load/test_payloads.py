"""Payload pools: shapes from signatures, seeded values, repeat share, user payloads, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pytest_tfserving.load.payloads import (
    PayloadError,
    PayloadOptions,
    build_pool,
    generate_inputs,
    repeat_order,
)
from pytest_tfserving.load.wire import TensorSpec, iter_fields

SIG = {"images": TensorSpec("DT_FLOAT", (-1, 8, 8, 3)), "ids": TensorSpec("DT_INT32", (-1, 4))}


def test_generated_inputs_have_signature_shapes_and_are_seeded() -> None:
    options = PayloadOptions(pool_size=5, batch_size=2, seed=7)
    inputs = generate_inputs(SIG, options)
    assert len(inputs) == 5
    assert inputs[0]["images"].shape == (2, 8, 8, 3) and inputs[0]["images"].dtype == np.float32
    assert inputs[0]["ids"].shape == (2, 4) and inputs[0]["ids"].dtype == np.int32
    again = generate_inputs(SIG, options)
    np.testing.assert_array_equal(inputs[3]["images"], again[3]["images"])
    assert not np.array_equal(inputs[0]["images"], inputs[1]["images"])


@pytest.mark.parametrize("share", [0.0, 0.3, 0.8])
def test_repeat_order_has_the_requested_share(share: float) -> None:
    order = repeat_order(2000, share, seed=1)
    assert set(order.tolist()) == set(range(2000))
    repeats = 1 - 2000 / len(order)
    assert repeats == pytest.approx(share, abs=0.03)
    first_seen: dict[int, int] = {}
    for pos, idx in enumerate(order.tolist()):
        first_seen.setdefault(idx, pos)
    assert sorted(first_seen.values()) == [first_seen[i] for i in range(2000)]  # new inputs in order


def test_rest_bodies_are_json_with_the_signature_inputs() -> None:
    pool = build_pool(SIG, "rest", "tiny", "serving_default", PayloadOptions(pool_size=3))
    body = json.loads(pool.body(1))
    assert body["signature_name"] == "serving_default"
    assert np.asarray(body["inputs"]["images"]).shape == (1, 8, 8, 3)
    assert len(pool.bodies) == 3 and pool.body(4) == pool.body(1)


def test_grpc_bodies_name_the_model() -> None:
    pool = build_pool(SIG, "grpc", "tiny", "serving_default", PayloadOptions(pool_size=2))
    fields = dict(iter_fields(pool.body(0)))
    assert isinstance(fields[1], bytes) and dict(iter_fields(fields[1]))[1] == b"tiny"


def test_user_payloads_are_used_as_given_and_checked() -> None:
    given = [{"images": np.ones((1, 8, 8, 3), np.float32), "ids": np.zeros((1, 4), np.int32)}]
    pool = build_pool(SIG, "rest", "tiny", "serving_default", PayloadOptions(inputs=given))
    assert json.loads(pool.body(0))["inputs"]["images"][0][0][0] == [1.0, 1.0, 1.0]
    with pytest.raises(PayloadError, match=r"missing \['ids'\]"):
        build_pool(
            SIG, "rest", "tiny", "serving_default", PayloadOptions(inputs=[{"images": given[0]["images"]}])
        )


def test_unknown_dimensions_need_shapes() -> None:
    sig = {"x": TensorSpec("DT_FLOAT", (-1, -1))}
    with pytest.raises(PayloadError, match="shapes="):
        generate_inputs(sig, PayloadOptions())
    assert generate_inputs(sig, PayloadOptions(shapes={"x": (5,)}))[0]["x"].shape == (1, 5)


def test_bad_options_are_refused() -> None:
    with pytest.raises(PayloadError, match="repeat_share"):
        PayloadOptions(repeat_share=1.5)
    with pytest.raises(PayloadError, match="pool_size"):
        PayloadOptions(pool_size=0)
