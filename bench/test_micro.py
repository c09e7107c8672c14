"""Micro-benchmarks of the codecs, their decode kernels, the transforms and the entropy bound.

Inputs: a bfloat16 weight matrix (N(0, 0.02), seeded) pruned 2:4 along its last axis, the same
clustered to 16 centroids, and the dense original. Every codec registered at collection time
is benchmarked on every input it accepts (the others are skipped, never failed), and every
decode is checked against the input once.
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import pytest

import sparsecodecs as sc
from sparsecodecs.bench.entropy import entropy_bound
from sparsecodecs.registry import as_bits
from sparsecodecs.transforms import cluster, prune

CODECS = [info.name for info in sc.list_codecs() if info.error is None]
INPUTS = ["2:4", "2:4+k16", "dense"]


@pytest.fixture(scope="session")
def dense(shape: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(ml_dtypes.bfloat16)


@pytest.fixture(scope="session")
def inputs(dense: np.ndarray) -> dict[str, np.ndarray]:
    pruned, _ = prune(dense, "2:4")
    clustered, _ = cluster(pruned, 16)
    return {"2:4": pruned, "2:4+k16": clustered, "dense": dense}


def encode_or_skip(name: str, array: np.ndarray) -> tuple[Any, bytes]:
    codec = sc.get_codec(name)
    try:
        return codec, codec.encode(array)
    except (sc.PatternError, sc.CodecConfigError, sc.UnsupportedDtypeError) as exc:
        pytest.skip(f"{name} refuses this input: {exc}")


def set_info(benchmark: Any, array: np.ndarray, frame: bytes) -> None:
    benchmark.extra_info["dense_bytes"] = int(array.nbytes)
    benchmark.extra_info["frame_bytes"] = len(frame)
    benchmark.extra_info["effective_pct"] = round(100 * len(frame) / array.nbytes, 3)


@pytest.mark.parametrize("kind", INPUTS)
@pytest.mark.parametrize("name", CODECS)
def test_encode(benchmark, inputs, name, kind):
    array = inputs[kind]
    codec, frame = encode_or_skip(name, array)
    benchmark.group = f"encode bf16 {kind}"
    set_info(benchmark, array, frame)
    assert len(benchmark(codec.encode, array)) == len(frame)


@pytest.mark.parametrize("kind", INPUTS)
@pytest.mark.parametrize("name", CODECS)
def test_decode(benchmark, inputs, name, kind):
    array = inputs[kind]
    _, frame = encode_or_skip(name, array)
    sc.decode(frame)  # load or compile the kernels outside the measurement
    benchmark.group = f"decode bf16 {kind}"
    set_info(benchmark, array, frame)
    out = benchmark(sc.decode, frame)
    assert np.array_equal(as_bits(out)[0], as_bits(array)[0])


@pytest.mark.parametrize("pattern", ["2:4", "unstructured"])
def test_prune(benchmark, dense, pattern):
    benchmark.group = "transforms"
    args: tuple[Any, ...] = (dense, "2:4") if pattern == "2:4" else (dense, None)
    out, _ = benchmark(prune, *args, density=None if pattern == "2:4" else 0.5)
    assert np.count_nonzero(out) <= dense.size // 2


def test_cluster(benchmark, inputs):
    benchmark.group = "transforms"
    _, report = benchmark(cluster, inputs["2:4"], 16)
    assert report.distinct <= 16


def test_entropy_bound(benchmark, inputs):
    benchmark.group = "entropy bound"
    bound = benchmark(entropy_bound, inputs["2:4"])
    assert 0 < bound.nbytes < inputs["2:4"].nbytes
