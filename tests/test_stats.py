"""The percentile every measurement reports (p50, p95)."""

from __future__ import annotations

from kqv_demo.stats import percentile


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.95) == 95.0 and percentile(values, 0.5) == 50.0
    assert percentile([7.0], 0.95) == 7.0 and percentile([], 0.95) == 0.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.6) == 3.0  # rank ceil(2.4) = 3 (rounding would give rank 2)
    assert percentile([3.0, 1.0, 2.0], 0.0) == 1.0 and percentile([3.0, 1.0, 2.0], 1.0) == 3.0
