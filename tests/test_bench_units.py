"""``edgernn.bench`` pieces that need no subprocess: config, ONNX inputs, Pareto front, timing."""

from __future__ import annotations

import numpy as np
import pytest

from edgernn.bench import BenchConfig, TimingConfig
from edgernn.bench.inputs import assign_axes, grid_uses, make_feeds
from edgernn.bench.timing import peak_rss_mb, time_calls
from edgernn.errors import EdgeRNNError
from edgernn.report.plots import pareto_front
from edgernn.report.schema import latency_at, reference_point

X = {"name": "x", "dtype": "float32", "shape": ["batch", "time", 3]}
LENGTHS = {"name": "lengths", "dtype": "int64", "shape": ["batch"]}
TOKENS = {"name": "ids", "dtype": "int64", "shape": [None, None]}


@pytest.mark.parametrize(
    "kwargs",
    [{"batch_sizes": (0, 1)}, {"seq_lens": ()}, {"threads": (1, -2)}, {"device": "tpu"}],
)
def test_config_validates(kwargs):
    with pytest.raises(EdgeRNNError):
        BenchConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs", [{"min_time_s": 2.0, "max_time_s": 1.0}, {"min_iters": 0}, {"warmup": -1}]
)
def test_timing_config_validates(kwargs):
    with pytest.raises(EdgeRNNError):
        TimingConfig(**kwargs)


def test_axes_by_name_and_position():
    axes = assign_axes([X, LENGTHS, TOKENS])
    assert axes == {"x": ["batch", "seq", 3], "lengths": ["batch"], "ids": ["batch", "seq"]}
    assert grid_uses({"h": [1, "batch", 8]}) == (True, False)


def test_underivable_dims_need_an_example():
    free = {"name": "x", "dtype": "float32", "shape": ["batch", "time", "width"]}
    with pytest.raises(EdgeRNNError, match="pass --example"):
        assign_axes([free])
    assert assign_axes([free], frozenset({"x"}))["x"] == ["batch", "seq", "keep"]
    with pytest.raises(EdgeRNNError, match="cannot make up"):
        assign_axes([{"name": "s", "dtype": "object", "shape": ["batch"]}])


def test_feeds_follow_the_grid_point():
    inputs = [X, LENGTHS, TOKENS]
    feeds = make_feeds(inputs, assign_axes(inputs), (2, 5), np.random.default_rng(0))
    assert feeds["x"].shape == (2, 5, 3) and feeds["x"].dtype == np.float32
    assert feeds["lengths"].tolist() == [5, 5]  # every row runs the whole measured length
    assert feeds["ids"].shape == (2, 5) and 1 <= feeds["ids"].min() <= feeds["ids"].max() < 4


def test_example_is_tiled_and_checked():
    example = {"x": np.arange(6, dtype=np.float32).reshape(1, 2, 3)}
    axes = assign_axes([X], frozenset(example))
    feeds = make_feeds([X], axes, (3, 4), np.random.default_rng(0), example)
    assert feeds["x"].shape == (3, 4, 3)
    assert np.array_equal(feeds["x"][2, 3], example["x"][0, 1])
    with pytest.raises(EdgeRNNError, match="save it as float32"):
        make_feeds([X], axes, (1, 1), None, {"x": example["x"].astype(np.float64)})


def test_pareto_front():
    points = [(1.0, 90.0), (2.0, 95.0), (3.0, 94.0), (0.5, 80.0), (2.5, 96.0)]
    assert sorted(pareto_front(points, True)) == [0, 1, 3, 4]
    assert sorted(pareto_front(points, False)) == [3]


def test_reference_point_and_lookup():
    point = reference_point(BenchConfig(batch_sizes=(8, 1), seq_lens=(256, 16, 64)))
    assert point == {"device": "cpu", "batch": 1, "seq_len": 64, "threads": 1}
    row = {"latency": [{"threads": 1, "batch": None, "seq_len": 64, "p50_ms": 2.0}]}
    assert latency_at(row, point)["p50_ms"] == 2.0  # a graph without a batch axis matches


def test_timing_respects_minimums_and_caps():
    timing = {"warmup": 1, "min_iters": 7, "min_time_s": 0.0, "max_iters": 50, "max_time_s": 1.0}
    stats = time_calls(lambda: None, lambda: None, timing)
    assert stats["iterations"] == 7 and stats["p50_ms"] <= stats["p99_ms"]
    capped = time_calls(lambda: None, lambda: None, timing | {"min_time_s": 1.0, "max_iters": 9})
    assert capped["iterations"] == 9
    assert peak_rss_mb() > 1.0
