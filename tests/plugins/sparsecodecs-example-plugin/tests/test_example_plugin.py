"""The example plugin passes the sparsecodecs conformance suite, as every codec must."""

from __future__ import annotations

import numpy as np
import pytest
from sparsecodecs_example_plugin import RleZeros

import sparsecodecs as sc
from sparsecodecs.testing import CHECKS, check_codec


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("check", sorted(CHECKS))
def test_conformance(check: str, order: str) -> None:
    CHECKS[check](RleZeros(order=order))


def test_check_codec() -> None:
    check_codec(RleZeros(), max_examples=5)


def test_runs_are_zero_counts() -> None:
    a = np.array([[0, 0, 3], [0, 0, 0], [7, 0, 0]], dtype=np.int8)
    frame = RleZeros().encode(a)
    report = sc.inspect(frame)
    assert report.role_bytes["values"] == 2  # 3 and 7
    assert report.role_bytes["index"] == 2  # runs 2 and 4, one byte each
    assert np.array_equal(sc.decode(frame), a)


def test_order_is_a_validated_parameter() -> None:
    with pytest.raises(sc.CodecConfigError, match="order must be one of 'C', 'F'; got order='K'"):
        RleZeros(order="K")
