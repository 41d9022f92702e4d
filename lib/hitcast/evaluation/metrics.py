"""Binary-classification metrics in plain NumPy (checked against scikit-learn in the tests).

All functions take ``y`` (0/1 labels, shape (n,)) and ``p`` (scores in [0, 1], shape (n,)).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks for ties); NaN with one class."""
    y = np.asarray(y, dtype=np.int64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = pd.Series(p).rank(method="average").to_numpy()
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def pr_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision: sum over thresholds of precision x recall increment; NaN without positives."""
    y = np.asarray(y, dtype=np.int64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    pos = int(y.sum())
    if pos == 0:
        return float("nan")
    order = np.argsort(-p, kind="mergesort")
    ys, ps = y[order], p[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(1 - ys)
    last = np.r_[np.diff(ps) != 0, True]          # one point per distinct threshold
    tp, fp = tp[last], fp[last]
    precision = tp / (tp + fp)
    recall = tp / pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def confusion(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) when predicting 1 for ``p >= threshold``."""
    y = np.asarray(y, dtype=np.int64).ravel()
    pred = np.asarray(p, dtype=np.float64).ravel() >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    return tp, fp, fn, int(len(y) - tp - fp - fn)


def f1_at(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    """F1 of ``p >= threshold`` (0 when there are no true positives)."""
    tp, fp, fn, _ = confusion(y, p, threshold)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def f1_top_share(y: np.ndarray, p: np.ndarray, groups: np.ndarray, share: float) -> float:
    """F1 when the top ``share`` of each group by score is flagged (``round(share * n)`` rows of a group of n).

    The demo's label is rank-based (the top ``features.hit_share`` of a cutoff's cohort), so flagging the
    same share of each cutoff by score is the label's own operating point: no threshold to choose.
    Ties in ``p`` go to the earlier row.

    Parameters
    ----------
    y, p, groups : np.ndarray, shape (n,)
        Labels (0/1), scores and group keys (the cutoff).
    """
    y = np.asarray(y, dtype=np.int64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    groups = np.asarray(groups).ravel()
    flagged = np.zeros(len(y), dtype=bool)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        k = int(round(share * len(idx)))
        flagged[idx[np.argsort(-p[idx], kind="mergesort")[:k]]] = True
    tp = int(np.sum(flagged & (y == 1)))
    return 2 * tp / (int(flagged.sum()) + int(y.sum())) if tp else 0.0


def best_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The threshold that maximises F1 on ``(y, p)`` (the validation split); 0.5 without positives.

    Candidates are the distinct scores; ties go to the highest threshold.
    """
    y = np.asarray(y, dtype=np.int64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.sum() == 0 or len(y) == 0:
        return 0.5
    order = np.argsort(-p, kind="mergesort")
    ys, ps = y[order], p[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(1 - ys)
    last = np.r_[np.diff(ps) != 0, True]
    f1 = 2 * tp[last] / (tp[last] + fp[last] + y.sum())
    return float(ps[last][int(np.argmax(f1))])


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """F1, precision, recall (at ``threshold``), ROC-AUC, PR-AUC, Brier score, rows and positives."""
    y = np.asarray(y, dtype=np.int64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    tp, fp, fn, _ = confusion(y, p, threshold)
    return {
        "f1": f1_at(y, p, threshold),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "roc_auc": roc_auc(y, p),
        "pr_auc": pr_auc(y, p),
        "brier": float(np.mean((p - y) ** 2)) if len(y) else float("nan"),
        "rows": int(len(y)),
        "positives": int(y.sum()),
        "threshold": float(threshold),
    }


def grouped_metrics(pdf: pd.DataFrame, by: str, threshold: float, label: str = "is_hit",
                    score: str = "p", min_rows: int = 1) -> pd.DataFrame:
    """:func:`binary_metrics` per value of column ``by`` (groups under ``min_rows`` are left out).

    Returns
    -------
    pandas.DataFrame
        One row per group, sorted by group: ``by`` then the metric columns.
    """
    out = []
    for key, g in pdf.groupby(by, dropna=False, sort=True):
        if len(g) >= min_rows:
            out.append({by: key, **binary_metrics(g[label].to_numpy(), g[score].to_numpy(), threshold)})
    return pd.DataFrame(out)


def calibration_curve(y: np.ndarray, p: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean score, observed hit rate and count per equal-width score bin (empty bins dropped)."""
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    idx = np.minimum((p * bins).astype(int), bins - 1)
    counts = np.bincount(idx, minlength=bins)
    keep = counts > 0
    mean_p = np.bincount(idx, weights=p, minlength=bins)[keep] / counts[keep]
    rate = np.bincount(idx, weights=y, minlength=bins)[keep] / counts[keep]
    return mean_p, rate, counts[keep]


def fmt(value: float, digits: int = 3) -> str:
    """A metric for a Markdown table (``-`` for NaN)."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def release_period(dates: Sequence) -> list[str]:
    """``YYYYQn`` release quarter of each date (``unknown`` for missing)."""
    out = []
    for d in dates:
        if d is None or (isinstance(d, float) and math.isnan(d)) or pd.isna(d):
            out.append("unknown")
        else:
            ts = pd.Timestamp(d)
            out.append(f"{ts.year}Q{(ts.month - 1) // 3 + 1}")
    return out
