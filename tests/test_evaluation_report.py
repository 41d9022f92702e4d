"""Evaluation on literal rows: assessment with a validation threshold, the ground-truth limit, the GBT
baseline, a labelled catalog's examples and artist history, and the report with its PNGs."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hitcast.evaluation.ablations import assess, eval_rows, gbt_result
from hitcast.demo.truth import load_truth_or_reason
from hitcast.evaluation.limit import oracle_result, truth_result, with_latents
from hitcast.model.tabular import feature_columns
from hitcast.evaluation.report import PLOTS, write_report
from hitcast.evaluation.suite import comparison_notes
from helpers import synth_frames


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
    r = assess("fused", "fused-x", rows=rows, p=p, min_group_rows=1, threshold_rule="f1_max")
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
    limit = truth_result(truth, rows, min_group_rows=1, threshold_rule="f1_max")
    assert (limit.name, limit.threshold, limit.metrics["f1"], limit.metrics["roc_auc"]) == \
        ("ground truth", 0.7, 1.0, 1.0)
    assert truth_result(truth.assign(track_id="zz"), rows, min_group_rows=1, threshold_rule="f1_max") is None
    flat = [assess(name, v, rows=rows, p=np.full(8, p), min_group_rows=20, threshold_rule="f1_max")
            for name, v, p in (("fused", "v", .5), ("tabular", "w", .4))]
    notes = comparison_notes(flat, limit, limit_reason="")
    assert notes[0] == "fused vs tabular: F1 0.667 vs 0.667, ROC-AUC 0.500 vs 0.500: fused does NOT win on both"
    assert notes[1] == ("limit: the generator's true probabilities reach test F1 1.000 (ROC-AUC 1.000); "
                        "fused is 33.3 F1 points below it (more than 5 points)")


def test_truth_absent_gives_a_reason(cfg):
    truth, reason = load_truth_or_reason(cfg)
    assert truth is None and str(cfg.path(cfg.paths.raw)) in reason


def test_report_writes_markdown_pngs_and_json(tmp_path):
    rows = literal_rows()
    a = assess("fused", "fused-abc", rows=rows, p=np.array([.9, .2, .6, .5, .7, .3, .65, .4]), min_group_rows=1,
               threshold_rule="f1_max")
    b = assess("tabular", "tabular-def", rows=rows, p=np.array([.5, .5, .6, .4, .6, .5, .4, .3]), min_group_rows=1,
               threshold_rule="f1_max")
    path = write_report([a, b], tmp_path / "rep", title="test report", notes=["a note"], bins=10)
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
    cfg = dataclasses.replace(cfg, evaluate=dataclasses.replace(cfg.evaluate, gbt_iterations=5, gbt_max_depth=3))
    examples, spectrograms = synth_frames(spark, 30)
    rows = eval_rows(examples, spectrograms)
    assert len(rows) == 60 and set(rows["period"]) == {"2024Q2"}
    r = gbt_result(cfg, examples, rows)
    assert r.name == "gbt" and r.metrics["rows"] == 30
    # the reported AUC is the test rows' own (rank statistic, ties averaged)
    pos = r.test["is_hit"].astype(bool)
    ranks = r.test["p"].rank()
    auc = (ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum())
    assert r.metrics["roc_auc"] == pytest.approx(auc, abs=1e-9)
    assert r.metrics["roc_auc"] > 0.8            # the hit rule is learnable from plays and danceability


SPOTIFY_HEADER = ("track,artist,uri,danceability,energy,key,loudness,mode,speechiness,acousticness,instrumentalness,"
                  "liveness,valence,tempo,duration_ms,time_signature,chorus_hit,sections,target,decade")


def spotify_row(uri: str, target: str, decade: int, dance: float, sections: int) -> str:
    """One line of a hit-predictor CSV (the features not under test are constants)."""
    return (f"T {uri},A {uri},{uri},{dance},0.5,5,-7.5,1,0.04,0.3,0,0.1,0.6,120.0,200000,4,31.5,{sections},"
            f"{target},{decade}")


def test_labelled_examples_come_from_the_ingested_catalog(spark, tmp_path):
    from hitcast.config import load_config
    from hitcast.errors import TableMissingError
    from hitcast.evaluation.labelled import ARTIST_HISTORY, CANDIDATES, as_examples, model_features, read_catalog
    from hitcast.ingest.pipeline import run_ingest

    csv = tmp_path / "csv"
    csv.mkdir()
    (csv / "dataset-of-10s.csv").write_text("\n".join([
        SPOTIFY_HEADER, spotify_row("u1", "0", 2010, .2, 8), spotify_row("u2", "0", 2010, .3, 7)]) + "\n")
    (csv / "dataset-of-60s.csv").write_text("\n".join([
        SPOTIFY_HEADER, spotify_row("u1", "1", 1960, .1, 9), spotify_row("u7", "1", 1960, .5, 11),
        spotify_row("u4", "", 1960, .6, 10)]) + "\n")
    cfg = load_config(Path(__file__).resolve().parents[1] / "conf" / "spotify-hit-predictor.yaml",
                      ["spark.master=local[2]", f"paths.root={tmp_path}", "paths.warehouse=wh",
                       f"ingest.catalog_path={csv}", "ingest.events_path=no-events"])
    with pytest.raises(TableMissingError, match="jobs/ingest.py with the same --conf"):
        read_catalog(spark, cfg)
    run_ingest(spark, cfg)
    catalog = read_catalog(spark, cfg)
    features = model_features(catalog, [])
    assert features == [c for c in CANDIDATES if c != "explicit"]     # every numeric column with values
    examples = as_examples(catalog, features=features, test_from=2010, validation_share=10)
    ex = {r.track_id: r.asDict() for r in examples.collect()}
    assert sorted(ex) == ["u1", "u2", "u7"]            # u4 has no label; u7: xxhash64 % 100 = 0 < 10
    u1 = ex["u1"]                                       # in both files: dataset-of-60s.csv sorts last and wins
    assert (u1["is_hit"], u1["danceability"], u1["sections"], u1["chorus_hit"], u1["duration_ms"]) == \
        (1, .1, 9.0, 31.5, 200000.0)
    assert (str(u1["cutoff"]), str(u1["release_date"]), u1["split"]) == ("1960-01-01", "1960-01-01", "train")
    assert (ex["u2"]["split"], ex["u2"]["is_hit"], ex["u7"]["split"]) == ("test", 0, "validation")
    assert (ex["u7"]["genre"], ex["u7"]["popularity"], ex["u7"]["cold_start"]) == (None, None, False)
    assert all(ex["u7"][c] is not None for c in features) and not set(ARTIST_HISTORY) & set(ex["u7"])


def test_artist_history_counts_earlier_periods_only(spark):
    from hitcast.evaluation.labelled import artist_history

    rows = [  # track, artist_id, artist_name, release, label
        ("a60", None, "Ann", "1961-05-01", 1), ("a65", None, " ann ", "1965-01-01", 0),   # same artist by name
        ("a70", None, "Ann", "1972-01-01", None),   # unlabelled: counted as a track, not in the rate
        ("a80", None, "ANN", "1980-01-01", 0), ("a81", None, "Ann", "1989-12-31", 1),    # same period as a80
        ("b70", "id-b", "Ann", "1975-01-01", 1),    # artist_id wins: another artist than "Ann"
        ("b90", "id-b", "Bob", "1990-01-01", 0), ("n00", None, None, "2000-01-01", 1),
        ("x00", None, "Ann", None, 1)]
    catalog = spark.createDataFrame([(t, i, n, None if d is None else dt.date.fromisoformat(d), lab)
                                     for t, i, n, d, lab in rows],
                                    "track_id string, artist_id string, artist_name string, release_date date, "
                                    "known_label int")
    got = {r.track_id: (r.artist_prev_tracks, r.artist_prev_hits, r.artist_prev_hit_rate)
           for r in artist_history(catalog, period_years=10).collect()}
    assert got == {"a60": (0.0, 0.0, None), "a65": (0.0, 0.0, None), "a70": (2.0, 1.0, 0.5),
                   "a80": (3.0, 1.0, 0.5), "a81": (3.0, 1.0, 0.5), "b70": (0.0, 0.0, None),
                   "b90": (1.0, 1.0, 1.0)}            # no artist or no release date: no history row


def test_oracle_gbt_gets_the_generator_latents_and_is_reported(spark, cfg):
    cfg = dataclasses.replace(cfg, evaluate=dataclasses.replace(cfg.evaluate, gbt_iterations=5, gbt_max_depth=3))
    examples, _ = synth_frames(spark, 30)
    rows = eval_rows(examples, None)
    plain = gbt_result(cfg, examples, rows)
    rng = np.random.default_rng(0)                  # synth_rows' first draws: bright audio, danceability
    bright, dance = rng.random(30) < 0.5, rng.random(30)
    truth = pd.DataFrame({"track_id": [f"t{t:03d}" for t in range(30)], "audio_appeal": 1.5 * bright + dance,
                          "log_rate": 0.0, "genre": "pop"})    # the track-level part of the synthetic hit score
    oracle = oracle_result(cfg, examples, truth, rows=rows)
    assert oracle.name == "gbt + true latents" and oracle.metrics["rows"] == plain.metrics["rows"] == 30
    assert list(oracle.test["track_id"]) == list(plain.test["track_id"])
    assert oracle.metrics["roc_auc"] >= plain.metrics["roc_auc"] > 0.8
    joined = with_latents(examples, truth.iloc[1:])                    # t000 unknown to the truth: NULL
    assert feature_columns(joined)[-2:] == ["audio_appeal", "log_rate"]   # the GBT's extra inputs
    got = {r["track_id"]: r["audio_appeal"] for r in joined.select("track_id", "audio_appeal").distinct().collect()}
    assert got["t000"] is None and got["t001"] == pytest.approx(1.5 * bright[1] + dance[1])
    limit = assess("ground truth", "generator", rows=rows, p=rows["is_hit"].to_numpy(dtype=float), min_group_rows=20,
                   threshold_rule="f1_max")
    notes = comparison_notes([plain], limit, limit_reason="", oracle=oracle)
    assert notes[-1] == (f"learnable: a GBT trained on the same rows with the generator's latent values as extra "
                         f"inputs reaches F1 {oracle.metrics['f1']:.3f} (ROC-AUC {oracle.metrics['roc_auc']:.3f}), "
                         f"{100 * (1.0 - oracle.metrics['f1']):.1f} points below the limit: that part of the gap "
                         f"is what this many training rows cannot teach")
