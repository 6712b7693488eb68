"""Percentile bootstrap confidence intervals over entries: ``scipy.stats.bootstrap``, seeded through clipxai.seeding.

scipy draws each batch of resamples as ``generator.integers(0, n, (batch, n))``, so the resampled means depend on
the generator only, not on the batch size; the interval is scipy's linear (type 7) quantile of those means.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from clipxai.seeding import rng

# Resamples are drawn in batches of about this many indices, so 1000 resamples of 44k entries stay ~100 MB.
_BLOCK_ELEMENTS = 1 << 22


def _as_values(values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if np.any(~np.isfinite(values)):
        raise ValueError("bootstrap values must be finite (drop excluded entries first)")
    return values


def _check(level: float, n_resamples: int) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")


def _interval(samples: tuple, statistic, seed: int, n_resamples: int, level: float, keys: tuple,
              paired: bool) -> tuple[float, float]:
    n = samples[0].size
    result = stats.bootstrap(samples, statistic, n_resamples=n_resamples, batch=max(1, _BLOCK_ELEMENTS // n),
                             vectorized=True, paired=paired, confidence_level=level, method="percentile",
                             rng=rng(seed, "bootstrap", *keys))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def ci(values, seed: int, n_resamples: int = 1000, level: float = 0.95, keys: tuple = ()) -> tuple[float, float, float]:
    """(mean, lo, hi): the mean of ``values`` and its percentile-bootstrap ``level`` interval.

    Resamples entries with replacement ``n_resamples`` times; lo/hi are the (1-level)/2 and (1+level)/2 quantiles
    (linear interpolation) of the resampled means. The draws come from
    ``clipxai.seeding.rng(seed, "bootstrap", *keys)``: same values, seed and keys -> same interval. No values ->
    three NaNs.
    """
    _check(level, n_resamples)
    values = _as_values(values)
    if values.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if values.size == 1:  # scipy needs two entries; every resample of one entry is that entry
        return mean, mean, mean
    lo, hi = _interval((values,), np.mean, seed, n_resamples, level, tuple(keys), paired=False)
    return mean, lo, hi


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a - b, axis=axis)


def diff_ci(a, b, seed: int, n_resamples: int = 1000, level: float = 0.95,
            keys: tuple = ()) -> tuple[float, float, float]:
    """Paired bootstrap of mean(a) - mean(b), e.g. method minus baseline over the same entries in the same order.

    Each resample draws one set of entry indices for both (scipy's ``paired=True``), which is the bootstrap of the
    per-entry differences: the same interval as ``ci(a - b, keys=("paired", *keys))``.
    """
    _check(level, n_resamples)
    a, b = _as_values(a), _as_values(b)
    if a.shape != b.shape:
        raise ValueError(f"paired values must have the same length, got {a.size} and {b.size}")
    keys = ("paired", *keys)
    if a.size < 2:
        return ci(a - b, seed, n_resamples=n_resamples, level=level, keys=keys)
    mean = float((a - b).mean())
    lo, hi = _interval((a, b), _mean_difference, seed, n_resamples, level, keys, paired=True)
    return mean, lo, hi
