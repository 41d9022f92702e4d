"""Evaluation on literal rows: assessment with a validation threshold, the ground-truth limit, the GBT
baseline, the hit-predictor loader, and the report with its PNGs."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hitcast.evaluation.ablations import assess, eval_rows, gbt_result
from hitcast.evaluation.hitpredictor import CSV_SCHEMA, NUMERIC, as_examples
from hitcast.evaluation.limit import load_truth_or_reason, oracle_result, truth_result, with_latents
from hitcast.model.tabular import feature_columns
from hitcast.evaluation.report import PLOTS, write_report
from hitcast.evaluation.suite import comparison_notes
from test_model_synth import synth_frames


def literal_rows() -> pd.DataFrame:
    return pd.DataFrame({
        "track_id": [f"t{i}" for i in range(8)],
        "cutoff": ["2025-07-01"] * 4 + ["2025-09-01"] * 4,
        "split": ["validation"] * 4 + ["test"] * 4,
        "genre": ["pop", "rock", "pop", "rock", "pop", "rock", "pop", "rock"],
        "period": ["2025Q1"] * 8,
        "cold_start": [False, True] * 4,
        "is_hit": [1, 0, 1, 0, 1, 0, 0, 1],
    })


def test_assess_picks_threshold_on_validation_and_scores_test():
    rows = literal_rows()
    p = np.array([.9, .2, .6, .5, .7, .3, .65, .4])
    r = assess("fused", "fused-x", rows, p, min_group_rows=1)
    assert r.threshold == 0.6                      # validation: hits at .9 and .6, the best F1 cut is .6
    assert r.metrics["f1"] == pytest.approx(2 * 1 / (2 * 1 + 1 + 1))   # test: tp t4, fp t6, fn t7
    assert r.metrics["roc_auc"] == pytest.approx(0.75)
    assert list(r.test["track_id"]) == ["t4", "t5", "t6", "t7"]
    g = r.breakdown["genre"].set_index("genre")
    assert g.loc["pop", "rows"] == 2 and g.loc["pop", "f1"] == pytest.approx(2 / 3)
    assert list(r.breakdown["cold_start"]["cold_start"]) == [False, True]


def test_truth_limit_joins_on_track_and_cutoff():
    rows = literal_rows()
    truth = pd.DataFrame({"track_id": [f"t{i}" for i in range(8)] + ["t9"],
                          "cutoff": pd.to_datetime(["2025-07-01"] * 4 + ["2025-09-01"] * 5).date,
                          "true_hit_probability": [.8, .1, .7, .2, .9, .1, .2, .8, .5]})
    limit = truth_result(truth, rows, min_group_rows=1)
    assert (limit.name, limit.threshold, limit.metrics["f1"], limit.metrics["roc_auc"]) == \
        ("ground truth", 0.7, 1.0, 1.0)
    assert truth_result(truth.assign(track_id="zz"), rows) is None
    notes = comparison_notes([assess("fused", "v", rows, np.full(8, .5)), assess("tabular", "w", rows, np.full(8, .4))],
                             limit, "")
    assert notes[0] == "fused vs tabular: F1 0.667 vs 0.667, ROC-AUC 0.500 vs 0.500: fused does NOT win on both"
    assert notes[1] == ("limit: the generator's true probabilities reach test F1 1.000 (ROC-AUC 1.000); "
                        "fused is 33.3 F1 points below it (more than 5 points)")


def test_truth_absent_gives_a_reason(cfg):
    truth, reason = load_truth_or_reason(cfg)
    assert truth is None and str(cfg.path(cfg.paths.raw)) in reason


def test_report_writes_markdown_pngs_and_json(tmp_path):
    rows = literal_rows()
    a = assess("fused", "fused-abc", rows, np.array([.9, .2, .6, .5, .7, .3, .65, .4]), 1)
    b = assess("tabular", "tabular-def", rows, np.array([.5, .5, .6, .4, .6, .5, .4, .3]), 1)
    path = write_report([a, b], tmp_path / "rep", "test report", ["a note"])
    assert path == tmp_path / "rep" / "report.md"
    for name in PLOTS:
        png = tmp_path / "rep" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    text = path.read_text()
    assert "| fused | `fused-abc` | 0.600 | 0.500 | 0.500 | 0.500 | 0.750 |" in text
    assert "- a note" in text and "![roc](roc.png)" in text
    assert "| pop | 2 | 1 | 0.667 |" in text
    saved = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert saved["tabular"]["version"] == "tabular-def" and saved["fused"]["threshold"] == 0.6


def test_gbt_baseline_on_synthetic_rows(spark, cfg):
    cfg.evaluate.gbt_iterations, cfg.evaluate.gbt_max_depth = 5, 3
    examples, spectrograms = synth_frames(spark, 30)
    rows = eval_rows(examples, spectrograms)
    assert len(rows) == 60 and set(rows["period"]) == {"2024Q2"}
    r = gbt_result(cfg, examples, rows)
    assert r.name == "gbt" and r.metrics["rows"] == 30
    assert r.test["p"].between(0, 1).all()
    assert r.metrics["roc_auc"] > 0.8            # the hit rule is learnable from plays and danceability


def test_hit_predictor_dedup_and_time_split(spark):
    def row(uri, decade, target, dance):
        return ("T", "A", uri, *[dance] + [1.0] * (len(NUMERIC) - 1), target, decade)
    raw = spark.createDataFrame([row("u1", 1960, 1, .1), row("u1", 1970, 0, .2), row("u2", 2010, 0, .3),
                                 row(None, 1980, 1, .4), row("u3", 2000, 1, .5)], CSV_SCHEMA)
    ex = {r.track_id: r for r in as_examples(raw).collect()}
    assert sorted(ex) == ["u1", "u2", "u3"]
    assert (ex["u1"].is_hit, ex["u1"].danceability, str(ex["u1"].cutoff)) == (1, .1, "1960-01-01")
    assert ex["u2"].split == "test" and ex["u1"].split in ("train", "validation")
    assert ex["u3"].genre is None and ex["u3"].popularity is None and ex["u3"].cold_start is False


def test_oracle_gbt_gets_the_generator_latents_and_is_reported(spark, cfg):
    cfg.evaluate.gbt_iterations, cfg.evaluate.gbt_max_depth = 5, 3
    examples, _ = synth_frames(spark, 30)
    rows = eval_rows(examples, None)
    plain = gbt_result(cfg, examples, rows)
    rng = np.random.default_rng(0)                  # synth_rows' first draws: bright audio, danceability
    bright, dance = rng.random(30) < 0.5, rng.random(30)
    truth = pd.DataFrame({"track_id": [f"t{t:03d}" for t in range(30)], "audio_appeal": 1.5 * bright + dance,
                          "log_rate": 0.0, "genre": "pop"})    # the track-level part of the synthetic hit score
    oracle = oracle_result(cfg, examples, truth, rows)
    assert oracle.name == "gbt + true latents" and oracle.metrics["rows"] == plain.metrics["rows"] == 30
    assert list(oracle.test["track_id"]) == list(plain.test["track_id"])
    assert oracle.metrics["roc_auc"] >= plain.metrics["roc_auc"] > 0.8
    joined = with_latents(examples, truth.iloc[1:])                    # t000 unknown to the truth: NULL
    assert feature_columns(joined)[-2:] == ["audio_appeal", "log_rate"]   # the GBT's extra inputs
    got = {r["track_id"]: r["audio_appeal"] for r in joined.select("track_id", "audio_appeal").distinct().collect()}
    assert got["t000"] is None and got["t001"] == pytest.approx(1.5 * bright[1] + dance[1])
    limit = assess("ground truth", "generator", rows, rows["is_hit"].to_numpy(dtype=float))
    notes = comparison_notes([plain], limit, "", oracle)
    assert notes[-1] == (f"learnable: a GBT trained on the same rows with the generator's latent values as extra "
                         f"inputs reaches F1 {oracle.metrics['f1']:.3f} (ROC-AUC {oracle.metrics['roc_auc']:.3f}), "
                         f"{100 * (1.0 - oracle.metrics['f1']):.1f} points below the limit: that part of the gap "
                         f"is what this many training rows cannot teach")
