"""Evaluation metrics against scikit-learn on fixed arrays."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (average_precision_score, brier_score_loss, f1_score, precision_score, recall_score,
                             roc_auc_score)

from hitcast.evaluation.metrics import (best_threshold, binary_metrics, calibration_curve, f1_top_share,
                                        grouped_metrics, pr_auc, release_period, roc_auc)

Y = np.array([0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1])
P = np.array([.1, .4, .35, .8, .4, .9, .2, .4, .65, .7, .05, .55])   # ties at 0.4 across classes


def test_metrics_equal_sklearn():
    m = binary_metrics(Y, P, 0.5)
    pred = P >= 0.5
    assert m["f1"] == pytest.approx(f1_score(Y, pred))
    assert m["precision"] == pytest.approx(precision_score(Y, pred))
    assert m["recall"] == pytest.approx(recall_score(Y, pred))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(Y, P))
    assert m["pr_auc"] == pytest.approx(average_precision_score(Y, P))
    assert m["brier"] == pytest.approx(brier_score_loss(Y, P))
    assert (m["rows"], m["positives"], m["threshold"]) == (12, 6, 0.5)
    assert m["f1"] == pytest.approx(2 * 4 / (2 * 4 + 1 + 2))      # tp 4 (.8 .9 .65 .55), fp 1 (.7), fn 2


def test_random_arrays_equal_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    p = np.round(np.clip(y * 0.3 + rng.random(500) * 0.7, 0, 1), 2)   # rounded: many ties
    assert roc_auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert pr_auc(y, p) == pytest.approx(average_precision_score(y, p), abs=1e-12)


def test_best_threshold_maximises_f1():
    t = best_threshold(Y, P)
    grid = {th: f1_score(Y, P >= th) for th in np.unique(P)}
    assert t == 0.35 and f1_score(Y, P >= t) == max(grid.values())
    assert best_threshold(np.zeros(3), np.array([.2, .3, .4])) == 0.5


def test_one_class_gives_nan_auc():
    m = binary_metrics(np.zeros(4), np.array([.1, .2, .3, .4]), 0.5)
    assert np.isnan(m["roc_auc"]) and np.isnan(m["pr_auc"]) and m["f1"] == 0.0


def test_grouped_metrics_and_periods():
    pdf = pd.DataFrame({"is_hit": Y, "p": P, "genre": ["a", "b"] * 6})
    g = grouped_metrics(pdf, "genre", 0.5)
    assert list(g["genre"]) == ["a", "b"]
    a = pdf[pdf.genre == "a"]
    assert g.loc[0, "roc_auc"] == pytest.approx(roc_auc_score(a.is_hit, a.p))
    assert list(g["rows"]) == [6, 6]
    assert release_period([dt.date(2025, 2, 1), dt.date(2024, 12, 31), None]) == ["2025Q1", "2024Q4", "unknown"]


def test_calibration_curve():
    mean_p, rate, n = calibration_curve(np.array([0, 1, 1, 0]), np.array([.05, .15, .95, .99]), bins=10)
    np.testing.assert_allclose(mean_p, [.05, .15, .97])
    np.testing.assert_allclose(rate, [0, 1, .5])
    assert list(n) == [1, 1, 2]


def test_f1_top_share_flags_the_same_share_of_every_cutoff():
    y = np.array([1, 0, 0, 0, 0, 1, 0, 1, 0, 0])
    p = np.array([.9, .8, .1, .2, .3, .05, .6, .7, .4, .5])
    cut = np.array(["a"] * 5 + ["b"] * 5)
    # a: top 2 of 5 (round(0.4 * 5)) = rows 0, 1 -> 1 hit; b: rows 7, 6 -> 1 hit; 2 TP, 2 FP, 1 FN
    assert f1_top_share(y, p, cut, 0.4) == pytest.approx(2 * 2 / (4 + 3))
    assert f1_top_share(y, p, np.zeros(10), 0.3) == pytest.approx(2 * 2 / (3 + 3))   # rows 0, 1, 7 as one group
    assert f1_top_share(y, np.ones(10), cut, 0.2) == pytest.approx(2 * 2 / (2 + 3))  # ties: earlier rows (0, 5)
    assert f1_top_share(y, p, cut, 0.0) == 0.0
