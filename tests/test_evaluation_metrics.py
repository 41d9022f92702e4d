"""Evaluation metrics on fixed arrays, against values worked out by hand."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from hitcast.metrics import (METRIC_KEYS, best_threshold, binary_metrics, bootstrap_threshold,
                                        calibration_curve, choose_threshold, f1_top_share, grouped_metrics,
                                        release_period)

Y = np.array([0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1])
P = np.array([.1, .4, .35, .8, .4, .9, .2, .4, .65, .7, .05, .55])   # ties at 0.4 across classes
# positives score .35 .8 .9 .4 .65 .55; negatives .1 .4 .4 .2 .7 .05


def test_binary_metrics_by_hand():
    m = binary_metrics(Y, P, 0.5)
    assert tuple(m) == METRIC_KEYS
    # at 0.5: tp 4 (.8 .9 .65 .55), fp 1 (.7), fn 2 (.35 .4)
    assert m["precision"] == pytest.approx(4 / 5)
    assert m["recall"] == pytest.approx(4 / 6)
    assert m["f1"] == pytest.approx(2 * 4 / (2 * 4 + 1 + 2))
    # positive-negative pairs ranked right, of 36 (a tie counts 1/2): .35 beats 3, .8 and .9 beat 6,
    # .4 beats 3 and ties 2, .65 and .55 beat 5
    assert m["roc_auc"] == pytest.approx((3 + 6 + 6 + 4 + 5 + 5) / 36)
    # average precision: precision at each distinct threshold where recall grows by 1/6
    # (.9: 1/1, .8: 2/2, .65: 3/4, .55: 4/5, .4: 5/8, .35: 6/9)
    assert m["pr_auc"] == pytest.approx((1 + 1 + 3 / 4 + 4 / 5 + 5 / 8 + 6 / 9) / 6)
    # squared errors: positives .4225 .04 .01 .36 .1225 .2025, negatives .01 .16 .16 .04 .49 .0025
    assert m["brier"] == pytest.approx(2.02 / 12)
    assert (m["rows"], m["positives"], m["threshold"]) == (12, 6, 0.5)


def test_binary_metrics_default_threshold_and_column_shapes():
    m = binary_metrics(np.array([[1.0], [0.0], [1.0]]), np.array([[.7], [.6], [.2]], dtype=np.float32))
    assert m["threshold"] == 0.5
    assert (m["precision"], m["recall"]) == (0.5, 0.5)
    assert m["roc_auc"] == pytest.approx(0.5)                # .7 beats .6, .2 does not


def test_best_threshold_maximises_f1():
    # F1 = 2 tp / (tp + fp + 6) at each distinct score: .9 2/7, .8 4/8, .7 4/9, .65 6/10, .55 8/11,
    # .4 10/14, .35 12/15 (the best), .2 12/16, ...
    assert best_threshold(Y, P) == 0.35
    assert best_threshold(np.zeros(3), np.array([.2, .3, .4])) == 0.5
    # F1 2/3 at .9 (tp 1) and at .6 (tp 2, fp 2), less between: the higher threshold wins
    assert best_threshold(np.array([1, 0, 0, 1]), np.array([.9, .8, .7, .6])) == 0.9


def test_one_class_gives_nan_auc():
    m = binary_metrics(np.zeros(4), np.array([.1, .2, .3, .4]), 0.5)
    assert np.isnan(m["roc_auc"]) and np.isnan(m["pr_auc"]) and m["f1"] == 0.0
    assert m["brier"] == pytest.approx((.01 + .04 + .09 + .16) / 4)
    empty = binary_metrics(np.zeros(0), np.zeros(0), 0.5)
    assert empty["rows"] == 0 and empty["f1"] == 0.0 and np.isnan(empty["brier"])


def test_grouped_metrics_and_periods():
    pdf = pd.DataFrame({"is_hit": Y, "p": P, "genre": ["a", "b"] * 6})
    g = grouped_metrics(pdf, "genre", 0.5)
    assert list(g["genre"]) == ["a", "b"]
    # group a (even rows): labels 0 1 0 0 1 0, scores .1 .35 .4 .2 .65 .05; of the 2 x 4 pairs,
    # .35 beats .1 .2 .05 (3) and .65 beats all four (4)
    assert g.loc[0, "roc_auc"] == pytest.approx(7 / 8)
    assert list(g["rows"]) == [6, 6]
    assert list(grouped_metrics(pdf, "genre", 0.5, min_rows=7)) == []
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
    assert f1_top_share(y, p, cut, share=0.4) == pytest.approx(2 * 2 / (4 + 3))
    assert f1_top_share(y, p, np.zeros(10), share=0.3) == pytest.approx(2 * 2 / (3 + 3))   # rows 0, 1, 7 as one group
    assert f1_top_share(y, np.ones(10), cut, share=0.2) == pytest.approx(2 * 2 / (2 + 3))  # ties: earlier rows (0, 5)
    assert f1_top_share(y, p, cut, share=0.0) == 0.0


def test_bootstrap_threshold_is_closer_to_the_populations_than_one_samples_argmax():
    # calibrated scores: P(y=1 | p) = p. The population's F1-best threshold comes from a very large sample;
    # on small validation samples the bootstrap median misses it by less, on average, than the argmax.
    rng = np.random.default_rng(3)
    big = rng.random(400_000)
    target = best_threshold(rng.random(big.size) < big, big)
    assert 0.3 < target < 0.45                                    # F1*/2 for these scores
    err_max, err_boot = [], []
    for _ in range(30):
        p = rng.random(400)
        y = (rng.random(400) < p).astype(int)
        err_max.append(abs(best_threshold(y, p) - target))
        err_boot.append(abs(bootstrap_threshold(y, p, draws=100) - target))
    assert np.mean(err_boot) < 0.9 * np.mean(err_max)          # measured: 0.043 against 0.051
    assert bootstrap_threshold(y, p) == bootstrap_threshold(y, p)              # deterministic for a seed
    assert choose_threshold(y, p, "f1_max") == best_threshold(y, p)
    assert bootstrap_threshold(np.zeros(3), np.array([.2, .3, .4])) == 0.5
