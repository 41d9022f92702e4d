"""Quantile-based encodings of numeric features: knots computed in Spark, transforms in plain NumPy.

- :func:`quantile_knots`: a feature's train-split quantiles at ``linspace(0, 1, k)``, one Spark pass.
- :func:`rank_gauss`: through the knots onto a standard normal (scikit-learn's ``QuantileTransformer``
  with ``output_distribution="normal"``).
- :func:`piecewise_linear`: the piecewise-linear encoding of Gorishniy et al. (2022), "On Embeddings for
  Numerical Features in Tabular Deep Learning", with quantile bins.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

#: Rank-Gauss output is clipped to the normal quantiles of ``[U_BOUND, 1 - U_BOUND]`` (about +-3.1).
U_BOUND = 1e-3


def quantile_knots(train: DataFrame, features: Sequence[str], n_quantiles: int = 101) -> dict[str, list[float]]:
    """Train-split quantiles of each feature at ``linspace(0, 1, n_quantiles)``, in one Spark pass.

    Returns
    -------
    dict of str to list of float
        ``n_quantiles`` non-decreasing knots per feature; features that are NULL in every row are left out.
    """
    probs = [float(p) for p in np.linspace(0.0, 1.0, max(2, n_quantiles))]
    row = train.agg(*[F.percentile_approx(F.col(c).cast("double"), probs, 10_000).alias(f"q{i}")
                      for i, c in enumerate(features)]).first()
    return {c: [float(v) for v in row[f"q{i}"]] for i, c in enumerate(features) if row[f"q{i}"] is not None}


def rank_gauss(x: np.ndarray, knots: Sequence[float]) -> np.ndarray:
    """Map values through their quantile knots onto a standard normal.

    ``u`` is the average of the forward and backward linear interpolation of ``x`` over the knots
    (so a value repeated across several knots, as a binary feature's, lands in the middle of its
    probability mass), clipped to ``[U_BOUND, 1 - U_BOUND]``; the result is ``Phi^-1(u)``.

    Parameters
    ----------
    x : np.ndarray, shape (n,), float64 (NaN passes through)
    knots : sequence of float, length k >= 2, non-decreasing

    Returns
    -------
    np.ndarray, shape (n,), float64, in about [-3.09, 3.09]
    """
    from scipy.special import ndtri

    q = np.asarray(knots, dtype=np.float64)
    probs = np.linspace(0.0, 1.0, q.size)
    fwd = np.interp(x, q, probs)
    bwd = 1.0 - np.interp(-x, -q[::-1], 1.0 - probs[::-1])
    u = np.clip(0.5 * (fwd + bwd), U_BOUND, 1.0 - U_BOUND)
    return np.where(np.isnan(x), np.nan, ndtri(u))


def bin_edges(knots: Sequence[float], bins: int) -> np.ndarray:
    """At most ``bins + 1`` distinct edges: the knots at ``bins + 1`` evenly spaced quantile levels.

    Returns
    -------
    np.ndarray, shape (m,), float64, strictly increasing, ``2 <= m <= bins + 1`` (a constant feature
    gets the edges ``[v, v + 1]``; no knots gives ``[0, 1]``).
    """
    q = np.asarray(knots, dtype=np.float64)
    if q.size == 0:
        return np.array([0.0, 1.0])
    edges = np.unique(q[np.round(np.linspace(0, q.size - 1, bins + 1)).astype(int)])
    return edges if edges.size >= 2 else np.array([edges[0], edges[0] + 1.0])


def piecewise_linear(x: np.ndarray, knots: Sequence[float], bins: int) -> np.ndarray:
    """Piecewise-linear encoding over quantile bins.

    Component ``t`` of a value ``x`` is ``clip((x - e[t]) / (e[t + 1] - e[t]), 0, 1)`` for the edges
    ``e`` of :func:`bin_edges`: 1 for every bin wholly below ``x``, the fraction of the bin ``x`` falls in,
    0 above. NaN (missing) encodes as all zeros (its missing indicator is added by the caller).

    Parameters
    ----------
    x : np.ndarray, shape (n,), float64
    knots : sequence of float
        :func:`quantile_knots` of the feature.
    bins : int

    Returns
    -------
    np.ndarray, shape (n, bins), float64 in [0, 1]; components past the feature's distinct bins are 0.
    """
    e = bin_edges(knots, bins)
    lo, hi = e[:-1][None, :], e[1:][None, :]
    with np.errstate(invalid="ignore"):
        comp = np.clip((np.asarray(x, dtype=np.float64)[:, None] - lo) / (hi - lo), 0.0, 1.0)
    out = np.zeros((comp.shape[0], bins))
    out[:, :comp.shape[1]] = np.nan_to_num(comp, nan=0.0)
    return out
