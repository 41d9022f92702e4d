"""The generative model shared by the event simulation and the ground truth.

A track ``i`` released on day ``r_i`` (days counted from ``demo.start_date``) is listened to on day
``d >= r_i`` a Poisson number of times with mean::

    lam_i * (exp(-(d - r_i) / TAU_DAYS) + TAIL) * noise[i, d // 7] * burst[i, d // 7]

``noise`` is a mean-one log-normal per (track, calendar week) with ``NOISE_SIGMA``; ``burst`` is a
viral burst, ``U(BURST_LOW, BURST_HIGH)`` with probability ``BURST_P`` per week, else 1. Each listen
is a ``skip`` with probability ``skip_p[i]`` and otherwise a ``play``; every play is followed by a
``save``, ``playlist_add`` or ``share`` with their own probabilities. By Poisson thinning, plays in a
window are Poisson with mean ``sum_d base_i(d) * noise * burst * (1 - skip_p[i])`` — what
:mod:`hitcast.demo.truth` integrates.
"""
from __future__ import annotations

import numpy as np

TAU_DAYS = 45.0
TAIL = 0.08
NOISE_SIGMA = 0.5
BURST_P = 0.03
BURST_LOW, BURST_HIGH = 3.0, 8.0
MEAN_BURST = 1.0 + BURST_P * ((BURST_LOW + BURST_HIGH) / 2.0 - 1.0)


def base_rate(lam: np.ndarray, release_day: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Expected listens per day before noise and bursts.

    Parameters
    ----------
    lam, release_day : np.ndarray, shape (n,)
    days : np.ndarray, shape (m,) or (n, m)
        Absolute day indices.

    Returns
    -------
    np.ndarray, shape (n, m), float64
        Zero before release.
    """
    age = np.asarray(days, dtype=np.float64) - release_day[:, None]
    out = lam[:, None] * (np.exp(-np.clip(age, 0, None) / TAU_DAYS) + TAIL)
    return np.where(age >= 0, out, 0.0)


def lifetime_weight(release_day: np.ndarray, n_days: int) -> np.ndarray:
    """``sum_d (exp(-(d - r)/TAU) + TAIL)`` over the simulated days ``r .. n_days-1``, shape (n,)."""
    span = np.clip(n_days - release_day, 0, None).astype(np.float64)
    q = np.exp(-1.0 / TAU_DAYS)
    return (1.0 - q ** span) / (1.0 - q) + TAIL * span


def week_multipliers(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Log-normal noise times viral bursts, one per (track, week): array of ``shape``, mean ``MEAN_BURST``."""
    z = rng.standard_normal(shape)
    noise = np.exp(NOISE_SIGMA * z - NOISE_SIGMA ** 2 / 2.0)
    burst = np.where(rng.random(shape) < BURST_P, rng.uniform(BURST_LOW, BURST_HIGH, shape), 1.0)
    return noise * burst


def percent_rank(values: np.ndarray) -> np.ndarray:
    """SQL ``percent_rank()`` along the last axis: ``(rank_min - 1) / (n - 1)`` (0 when n == 1)."""
    v = np.asarray(values)
    n = v.shape[-1]
    if n <= 1:
        return np.zeros_like(v, dtype=np.float64)
    srt = np.sort(v, axis=-1)
    rank0 = np.stack([np.searchsorted(srt[k], v[k], side="left") for k in np.ndindex(v.shape[:-1])]) \
        if v.ndim > 1 else np.searchsorted(srt, v, side="left")
    return rank0.reshape(v.shape) / (n - 1)


def is_hit(pr: np.ndarray, hit_share: float) -> np.ndarray:
    """The label rule: a track is a hit when its percent rank is at least ``1 - hit_share``."""
    return pr >= 1.0 - hit_share - 1e-9
