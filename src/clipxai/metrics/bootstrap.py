"""Percentile bootstrap confidence intervals over entries, seeded through clipxai.seeding."""

from __future__ import annotations

import math

import numpy as np

from clipxai.seeding import rng

# Resampled indices are drawn in blocks of about this many, so 1000 resamples of 44k entries stay ~100 MB.
_BLOCK_ELEMENTS = 1 << 22


def _resampled_means(values: np.ndarray, seed: int, n_resamples: int, keys: tuple) -> np.ndarray:
    generator = rng(seed, "bootstrap", *keys)
    n = values.size
    block = max(1, _BLOCK_ELEMENTS // n)
    means = np.empty(n_resamples, dtype=np.float64)
    for start in range(0, n_resamples, block):
        stop = min(start + block, n_resamples)
        index = generator.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[index].mean(axis=1)
    return means


def _as_values(values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if np.any(~np.isfinite(values)):
        raise ValueError("bootstrap values must be finite (drop excluded entries first)")
    return values


def ci(values, seed: int, n_resamples: int = 1000, level: float = 0.95, keys: tuple = ()) -> tuple[float, float, float]:
    """(mean, lo, hi): the mean of ``values`` and its percentile-bootstrap ``level`` interval.

    Resamples entries with replacement ``n_resamples`` times; lo/hi are the (1-level)/2 and (1+level)/2 quantiles
    (numpy's default linear interpolation) of the resampled means. The draws come from
    ``clipxai.seeding.rng(seed, "bootstrap", *keys)``: same values, seed and keys -> same interval. No values ->
    three NaNs.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    values = _as_values(values)
    if values.size == 0:
        return math.nan, math.nan, math.nan
    means = _resampled_means(values, seed, n_resamples, tuple(keys))
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(values.mean()), float(lo), float(hi)


def diff_ci(a, b, seed: int, n_resamples: int = 1000, level: float = 0.95,
            keys: tuple = ()) -> tuple[float, float, float]:
    """Paired bootstrap of mean(a) - mean(b), e.g. method minus baseline over the same entries in the same order.

    Each resample draws one set of entry indices for both, which is the bootstrap of the per-entry differences.
    """
    a, b = _as_values(a), _as_values(b)
    if a.shape != b.shape:
        raise ValueError(f"paired values must have the same length, got {a.size} and {b.size}")
    return ci(a - b, seed, n_resamples=n_resamples, level=level, keys=("paired", *keys))
