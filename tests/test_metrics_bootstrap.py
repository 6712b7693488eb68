"""Percentile bootstrap: contains the mean, deterministic per seed, about the right width, paired differences."""

import math

import numpy as np
import pytest

from clipxai.metrics.bootstrap import ci, diff_ci
from clipxai.seeding import rng


def test_ci_contains_the_mean_and_is_deterministic_for_a_seed():
    values = rng(1, "test", "values").random(500)
    mean, lo, hi = ci(values, seed=7)
    assert mean == pytest.approx(values.mean())
    assert lo < mean < hi
    assert ci(values, seed=7) == (mean, lo, hi)
    assert ci(values, seed=8) != (mean, lo, hi)
    assert ci(values, seed=7, keys=("other",)) != (mean, lo, hi)


def test_ci_width_matches_the_normal_approximation():
    values = rng(2, "test", "values").normal(0.0, 1.0, size=2000)
    _, lo, hi = ci(values, seed=0, n_resamples=2000)
    expected = 2 * 1.959964 * values.std() / math.sqrt(values.size)
    assert hi - lo == pytest.approx(expected, rel=0.12)
    _, lo90, hi90 = ci(values, seed=0, n_resamples=2000, level=0.90)
    assert hi90 - lo90 < hi - lo


def test_ci_does_not_depend_on_the_internal_block_size(monkeypatch):
    import clipxai.metrics.bootstrap as bootstrap
    values = rng(3, "test", "values").random(50)
    reference = ci(values, seed=0, n_resamples=37)
    monkeypatch.setattr(bootstrap, "_BLOCK_ELEMENTS", 50 * 5)   # blocks of 5 resamples
    assert ci(values, seed=0, n_resamples=37) == reference


def test_degenerate_inputs():
    assert ci([0.5] * 10, seed=0) == (0.5, 0.5, 0.5)
    assert all(math.isnan(x) for x in ci([], seed=0))
    with pytest.raises(ValueError):
        ci([0.1, float("nan")], seed=0)


def test_paired_difference_is_narrower_than_unpaired_for_correlated_scores():
    gen = rng(4, "test", "paired")
    base = gen.random(400)
    method = base + 0.05 + gen.normal(0, 0.02, size=400)
    mean, lo, hi = diff_ci(method, base, seed=0)
    assert mean == pytest.approx(0.05, abs=0.005)
    assert lo > 0.04 and hi < 0.06
    _, lo_a, hi_a = ci(method, seed=0)
    assert hi - lo < (hi_a - lo_a) / 5
    with pytest.raises(ValueError):
        diff_ci([0.1, 0.2], [0.1], seed=0)
