"""Tabular model inputs: which columns, their standardisation statistics, and the NumPy encoding.

Every numeric (or boolean) column of ``training_examples`` that is not in
:data:`hitcast.schemas.ID_COLUMNS` / :data:`hitcast.schemas.LABEL_COLUMNS` is a model input. ``genre`` is
one-hot encoded with the training split's vocabulary plus one "unknown" bucket.

Heavy-tailed counts can be compressed first (``train.log1p_min_skew`` > 0): a feature whose train-split
minimum is at least 0 and whose skewness exceeds that value (plays, listeners, shares, durations in ms, ...)
is replaced by ``log1p(max(x, 0))`` before it is standardised. Which features are compressed is decided in Spark on the
train split and saved with the statistics (``log1p``), so scoring applies exactly the same transform.

Alternatively (``train.scaling: rank_gauss``) every feature is mapped through its train-split quantiles
onto a standard normal (the "rank-Gauss" transform of scikit-learn's ``QuantileTransformer``): the
quantile knots are computed in Spark (``percentile_approx``) and saved with the statistics; heavy tails,
skew and outliers then cost an MLP nothing, and ``log1p`` is not needed. ``train.scaling: piecewise``
uses the same knots for a piecewise-linear encoding (``train.bins`` quantile bins per feature, see
:func:`hitcast.model.quantiles.piecewise_linear`): an MLP can then learn step-like effects of a feature
as a tree ensemble does.

Missing values are explicit: a feature is standardised with the train split's mean and (population)
standard deviation, NULL/NaN becomes 0 *after* standardising (the train mean), and a per-feature missing
indicator (1 = missing) goes into the model beside it. So a cold-start track's NULL engagement features
never look like "an average track with zero plays".

The encoded vector of one row, length ``2 * F + G + 1`` (``F`` features, ``G`` genres)::

    [ standardised values (F) | missing indicators (F) | genre one-hot (G + 1, last = unknown) ]

With piecewise scaling the values block is ``F * bins`` wide (feature-major, a feature's unused bins 0).
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, NumericType

from hitcast.errors import HitcastError
from hitcast.model.quantiles import piecewise_linear, quantile_knots, rank_gauss
from hitcast.schemas import CATEGORICAL_FEATURES, ID_COLUMNS, LABEL_COLUMNS

log = logging.getLogger(__name__)

#: Columns that are never model inputs even when numeric (ids, labels, lineage).
EXCLUDED: frozenset[str] = frozenset([*ID_COLUMNS, *LABEL_COLUMNS, "known_label", "as_of"])


class FeatureError(HitcastError):
    """The tabular inputs are unusable (the message names the column)."""


@dataclass
class TabularStats:
    """Everything needed to encode tabular inputs exactly as in training; saved as ``stats.json``.

    Attributes
    ----------
    features : list of str
        Numeric feature columns, in model order.
    means, stds : list of float
        Train-split mean and population std per feature (std 1.0 where the column is constant or empty).
    genres : list of str
        Train-split genre vocabulary (sorted); anything else maps to the unknown bucket.
    n_mels, n_frames : int
        Spectrogram shape the CNN expects.
    log1p : list of str
        Features replaced by ``log1p(max(x, 0))`` before standardising (``means``/``stds`` are of the
        transformed values). Empty in statistics saved before the transform existed.
    quantiles : dict of str to list of float
        With rank-Gauss or piecewise scaling: per feature, its train-split quantiles at ``linspace(0, 1, k)``
        (non-decreasing, ``k`` knots); such a feature is encoded from them instead of standardised.
    bins : int
        0, or with piecewise scaling the number of piecewise-linear components per feature.
    groups : dict of str to dict
        Per ``numeric`` input group of the model spec: ``{"columns", "means", "stds"}`` of its train split
        (:func:`compute_numeric_stats`).
    """

    features: list[str]
    means: list[float]
    stds: list[float]
    genres: list[str]
    n_mels: int = 64
    n_frames: int = 345
    extra: dict[str, Any] = field(default_factory=dict)
    log1p: list[str] = field(default_factory=list)
    quantiles: dict[str, list[float]] = field(default_factory=dict)
    bins: int = 0
    groups: dict[str, dict[str, list]] = field(default_factory=dict)

    @property
    def width(self) -> int:
        """Length of the encoded vector: ``2 * F + G + 1``, or ``F * (bins + 1) + G + 1`` when piecewise."""
        return len(self.features) * (max(self.bins, 1) + 1) + len(self.genres) + 1

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TabularStats":
        return cls(**json.loads(text))


def feature_columns(df: DataFrame) -> list[str]:
    """The numeric model inputs of ``df`` (``training_examples`` schema), in schema order.

    Returns
    -------
    list of str
        Numeric or boolean columns not in ID/LABEL columns.
    """
    return [f.name for f in df.schema.fields
            if f.name not in EXCLUDED and isinstance(f.dataType, (NumericType, BooleanType))]


SCALINGS = ("standard", "rank_gauss", "piecewise")


def compute_stats(train: DataFrame, features: Sequence[str], *, n_mels: int, n_frames: int,
                  log1p_min_skew: float = 0.0, scaling: str = "standard", n_quantiles: int = 101,
                  bins: int = 16) -> TabularStats:
    """Standardisation statistics and genre vocabulary, computed in Spark over the train split.

    Parameters
    ----------
    train : DataFrame
        Training rows with the ``features`` columns and ``genre`` (NULLs are ignored, as ``mean``/
        ``stddev_pop`` ignore them).
    features : sequence of str
        Numeric feature columns.
    log1p_min_skew : float
        Non-negative features more skewed than this (Spark ``skewness``) are log1p-compressed; 0 = none.
        Ignored with ``rank_gauss`` scaling (the quantile map makes a monotone transform redundant).
    scaling : {"standard", "rank_gauss", "piecewise"}
        ``rank_gauss`` and ``piecewise`` also compute ``n_quantiles`` quantile knots per feature (Spark
        ``percentile_approx``, accuracy 10,000).
    bins : int
        Piecewise-linear components per feature (``piecewise`` only).

    Returns
    -------
    TabularStats
    """
    if not features:
        raise FeatureError("training_examples has no numeric feature columns besides ids and labels")
    if scaling not in SCALINGS:
        raise FeatureError(f"train.scaling must be one of {', '.join(SCALINGS)}, got {scaling!r}")
    logged: list[str] = []
    if log1p_min_skew > 0 and scaling == "standard":
        shape = train.agg(*[agg for i, c in enumerate(features)
                            for agg in (F.min(F.col(c).cast("double")).alias(f"lo{i}"),
                                        F.skewness(F.col(c).cast("double")).alias(f"sk{i}"))]).first()
        logged = [c for i, c in enumerate(features) if shape[f"lo{i}"] is not None and shape[f"lo{i}"] >= 0
                  and shape[f"sk{i}"] is not None and shape[f"sk{i}"] > log1p_min_skew]
    aggs = []
    for i, c in enumerate(features):
        x = F.col(c).cast("double")
        x = F.when(x.isNotNull(), F.log1p(F.greatest(x, F.lit(0.0)))) if c in logged else x   # greatest skips NULL
        aggs += [F.mean(x).alias(f"m{i}"), F.stddev_pop(x).alias(f"s{i}")]
    row = train.agg(*aggs).first()
    means, stds = [], []
    for i, c in enumerate(features):
        m, s = row[f"m{i}"], row[f"s{i}"]
        if m is None:
            log.warning("feature %s is NULL in every training row; it carries only its missing indicator", c)
        means.append(float(m) if m is not None else 0.0)
        stds.append(float(s) if s is not None and s > 1e-12 else 1.0)
    genres: list[str] = []
    if "genre" in train.columns:
        genres = sorted(r["genre"] for r in train.select("genre").where(F.col("genre").isNotNull())
                        .distinct().collect())
    quantiles = quantile_knots(train, features, n_quantiles) if scaling != "standard" else {}
    log.info("tabular stats: %d features (%d log1p-compressed: %s; %d quantile-mapped, %s), %d genres",
             len(features), len(logged), ", ".join(logged) or "none", len(quantiles), scaling, len(genres))
    return TabularStats(list(features), means, stds, genres, int(n_mels), int(n_frames), log1p=logged,
                        quantiles=quantiles, bins=int(bins) if scaling == "piecewise" else 0)


def encode_tabular(pdf: pd.DataFrame, stats: TabularStats) -> np.ndarray:
    """Encode rows for the model (pure NumPy/pandas; the same code in training and scoring).

    Parameters
    ----------
    pdf : pandas.DataFrame
        The ``stats.features`` columns (numbers, None/NaN allowed; a column absent from ``pdf`` counts
        as missing in every row) and optionally ``genre``.
    stats : TabularStats

    Returns
    -------
    np.ndarray, shape (n_rows, stats.width), float32
        ``[standardised (rank-Gauss, piecewise) values | missing indicators | genre one-hot]``, see the
        module docstring.
    """
    n, f = len(pdf), len(stats.features)
    raw = np.full((n, f), np.nan, dtype=np.float64)
    for j, c in enumerate(stats.features):
        if c in pdf.columns:
            raw[:, j] = pd.to_numeric(pdf[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    missing = ~np.isfinite(raw)
    for j, c in enumerate(stats.features):
        if c in stats.log1p:
            raw[:, j] = np.log1p(np.maximum(raw[:, j], 0.0))
    if stats.bins:
        blocks = [piecewise_linear(raw[:, j], stats.quantiles.get(c, []), stats.bins)
                  for j, c in enumerate(stats.features)]
        z = np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0))
    else:
        z = (raw - np.asarray(stats.means)) / np.asarray(stats.stds)
        for j, c in enumerate(stats.features):
            if c in stats.quantiles:
                z[:, j] = rank_gauss(raw[:, j], stats.quantiles[c])
        z[missing] = 0.0
    onehot = np.zeros((n, len(stats.genres) + 1), dtype=np.float32)
    index = {g: i for i, g in enumerate(stats.genres)}
    genre = pdf["genre"] if "genre" in pdf.columns else pd.Series([None] * n)
    cols = np.array([index.get(g, len(stats.genres)) if isinstance(g, str) else len(stats.genres)
                     for g in genre], dtype=np.int64)
    onehot[np.arange(n), cols] = 1.0
    return np.concatenate([z.astype(np.float32), missing.astype(np.float32), onehot], axis=1)


def compute_numeric_stats(train: DataFrame, columns: Sequence[str]) -> dict[str, list]:
    """Train-split mean and population std of a ``numeric`` input group's columns (NULLs ignored; std 1.0
    where constant or empty), computed in Spark.

    Returns
    -------
    dict
        ``{"columns": [...], "means": [...], "stds": [...]}``, what :func:`encode_numeric` reads.
    """
    row = train.agg(*[agg for i, c in enumerate(columns)
                      for agg in (F.mean(F.col(c).cast("double")).alias(f"m{i}"),
                                  F.stddev_pop(F.col(c).cast("double")).alias(f"s{i}"))]).first()
    means = [float(row[f"m{i}"]) if row[f"m{i}"] is not None else 0.0 for i in range(len(columns))]
    stds = [float(row[f"s{i}"]) if row[f"s{i}"] is not None and row[f"s{i}"] > 1e-12 else 1.0
            for i in range(len(columns))]
    return {"columns": list(columns), "means": means, "stds": stds}


def encode_numeric(pdf: pd.DataFrame, stats: dict[str, list]) -> np.ndarray:
    """Encode a ``numeric`` input group's columns: standardised values (0 where missing) and missing indicators.

    Parameters
    ----------
    pdf : pandas.DataFrame
        The group's columns (a column absent from ``pdf`` counts as missing in every row).
    stats : dict
        :func:`compute_numeric_stats` output.

    Returns
    -------
    np.ndarray, shape (n_rows, 2 * C), float32
        ``[standardised values (C) | missing indicators (C)]``.
    """
    n, columns = len(pdf), stats["columns"]
    raw = np.full((n, len(columns)), np.nan, dtype=np.float64)
    for j, c in enumerate(columns):
        if c in pdf.columns:
            raw[:, j] = pd.to_numeric(pdf[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    missing = ~np.isfinite(raw)
    z = (raw - np.asarray(stats["means"])) / np.asarray(stats["stds"])
    z[missing] = 0.0
    return np.concatenate([z.astype(np.float32), missing.astype(np.float32)], axis=1)


def neutral_numeric(encoded: np.ndarray) -> np.ndarray:
    """:func:`encode_numeric` rows with every column "missing" (the state a track without the source has)."""
    c = encoded.shape[1] // 2
    out = np.zeros_like(encoded)
    out[:, c:] = 1.0
    return out
