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


def _hand_written_interval(values, seed, n_resamples, level, keys):
    """The percentile bootstrap written out: one (n_resamples, n) draw of indices, means, numpy's linear quantile."""
    index = rng(seed, "bootstrap", *keys).integers(0, values.size, size=(n_resamples, values.size))
    means = values[index].mean(axis=1)
    return np.quantile(means, [(1 - level) / 2, (1 + level) / 2])


@pytest.mark.parametrize("case", range(12))
def test_scipy_interval_matches_the_hand_written_bootstrap_to_one_ulp(case):
    # scipy draws the same indices from the same generator; its type-7 quantile rounds differently from numpy's in
    # the last bit at most, which the tables' 6 significant digits never show.
    gen = np.random.default_rng(case)
    n = int(gen.integers(2, 300))
    values = (gen.random(n) < 0.4).astype(float) if case % 2 else gen.random(n)
    level = (0.95, 0.9)[case % 3 == 0]
    mean, lo, hi = ci(values, seed=case, n_resamples=500, level=level, keys=("k", case))
    expected = _hand_written_interval(values, case, 500, level, ("k", case))
    assert mean == values.mean()
    assert np.abs(np.array([lo, hi]) - expected).max() <= np.spacing(1.0)
    assert [f"{x:.6g}" for x in (lo, hi)] == [f"{x:.6g}" for x in expected]


def test_paired_interval_is_the_interval_of_the_differences():
    gen = rng(5, "test", "paired")
    a, b = gen.random(300), gen.random(300)
    assert diff_ci(a, b, seed=3, keys=("m",)) == ci(a - b, seed=3, keys=("paired", "m"))
    assert diff_ci([0.7], [0.2], seed=0) == pytest.approx((0.5, 0.5, 0.5))


def test_a_single_entry_is_its_own_interval():
    assert ci([0.25], seed=0) == (0.25, 0.25, 0.25)
