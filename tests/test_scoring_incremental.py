"""Incremental rescoring on a small generated catalog: exactly the changed tracks are scored again, the
reasons are faithful to the model, and every run is logged.

The tests run in file order on one module-scoped pipeline and change it step by step (the audio of one
track, two new tracks, events for them); each asserts the exact list of tracks its run rescored.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from types import SimpleNamespace

import numpy as np
import pytest
from pyspark.sql import functions as F

import analyst_pipeline
from audio_fixtures import write_tone
from helpers import make_config
from hitcast.ingest.pipeline import run_ingest
from hitcast.model.bundle import load_bundle
from hitcast.lifecycle.registry import latest_version
from hitcast.scoring.inputs import scoring_inputs
from hitcast.scoring.stage import run_scoring
from hitcast.spectrograms.stage import run_spectrograms
from hitcast.tables import read_table, table_version

#: The settings the session's ``trained_demo`` was built with.
SETTINGS = analyst_pipeline.SETTINGS
NEW = ("new0000001", "new0000002")


@pytest.fixture(scope="module")
def scored(spark, trained_demo, tmp_path_factory):
    """A copy of the session's ``trained_demo`` (generated, ingested, features, spectrograms, one model trained)
    scored once with that model: (cfg, the model's (version, path), the run's summary)."""
    root = tmp_path_factory.mktemp("incremental") / "root"
    shutil.copytree(trained_demo, root)
    cfg = make_config(root, *SETTINGS)
    version, path = latest_version(spark, cfg, cfg.train.variant)
    trained = SimpleNamespace(version=version, path=path)
    first = run_scoring(spark, cfg, version=trained.version)
    return cfg, trained, first


def rescored_in(spark, cfg, run_id: str) -> set[str]:
    """Track ids whose ``predictions`` row was written by the run ``run_id``."""
    rows = read_table(spark, cfg, "predictions").where(F.col("run_id") == run_id).select("track_id").collect()
    return {r.track_id for r in rows}


def run_row(spark, cfg, run_id: str):
    return read_table(spark, cfg, "scoring_runs").where(F.col("run_id") == run_id).first()


def test_first_run_scores_every_track_with_its_mode(spark, scored):
    cfg, trained, first = scored
    catalog = read_table(spark, cfg, "catalog")
    assert first.rescored == first.tracks == catalog.count() and first.unchanged == 0
    assert rescored_in(spark, cfg, first.run_id) == {r.track_id for r in catalog.collect()}
    spec = {r.track_id: r.status for r in read_table(spark, cfg, "spectrograms").collect()}
    seen = {r.track_id for r in read_table(spark, cfg, "engagement_events")
            .where(F.col("event_time") < F.lit(first.as_of).cast("timestamp")).select("track_id").distinct().collect()}
    threshold = load_bundle(trained.path).threshold
    modes: dict[str, int] = {}
    for row in read_table(spark, cfg, "predictions").collect():
        want = "cold_start" if row.track_id not in seen else ("full" if spec.get(row.track_id) == "ok" else "no_audio")
        assert row.mode == want, row.track_id
        assert row.audio_status == spec.get(row.track_id, "no_spectrogram")
        assert row.predicted_hit == (row.hit_probability >= threshold)
        modes[want] = modes.get(want, 0) + 1
    assert first.modes == modes and modes["no_audio"] >= 3   # the generator plants missing/empty/truncated audio
    ok = {r.track_id: r.content_hash for r in read_table(spark, cfg, "spectrograms").where("status = 'ok'").collect()}
    stored = spark.read.format("delta").load(cfg.table("audio_embeddings")).collect()
    assert first.encoded == len(ok) == len(stored)
    assert {r.track_id: r.content_hash for r in stored} == ok and {r.model_version for r in stored} == {trained.version}
    assert {len(r.embedding) for r in stored} == {4 * 32}       # 1 member x 32 float32 (dense_units 64 / 2)


def test_a_rerun_with_nothing_changed_calls_the_model_for_no_track(spark, scored):
    cfg, trained, first = scored
    again = run_scoring(spark, cfg, version=trained.version, as_of=first.as_of)
    assert (again.rescored, again.unchanged, again.features_reused, again.encoded) == (0, first.tracks, True, 0)
    assert rescored_in(spark, cfg, again.run_id) == set()
    logged = run_row(spark, cfg, again.run_id)
    assert (logged.tracks, logged.rescored, logged.unchanged, logged.psi) == (first.tracks, 0, first.tracks, 0.0)
    assert logged.score_histogram == run_row(spark, cfg, first.run_id).score_histogram
    assert sum(logged.score_histogram) == first.tracks


def test_reasons_move_the_score_by_their_contribution(spark, scored):
    """Neutralising a track's top input (its columns unknown, its genre unknown, or its audio absent) moves
    the bundle's score by the stated contribution."""
    cfg, trained, first = scored
    features = spark.read.format("delta").load(cfg.table("scoring_features")).where(F.col("cutoff") == first.as_of)
    inputs = scoring_inputs(features, read_table(spark, cfg, "spectrograms")).toPandas().set_index("track_id")
    bundle = load_bundle(trained.path)
    stored = {r.track_id: r for r in read_table(spark, cfg, "predictions").collect()}
    from hitcast.model.explain import group_of

    for track_id in sorted(stored)[:12]:
        row, pdf = stored[track_id], inputs.loc[[track_id]].copy()
        base = float(bundle.predict_pandas(pdf)["hit_probability"].iloc[0])
        assert base == pytest.approx(row.hit_probability, abs=1e-5)
        top = row.reasons[0]
        if top.input == "audio":
            pdf["mel"], pdf["status"] = None, "no_spectrogram"
        elif top.input == "genre":
            pdf["genre"] = None
        else:
            cols = [c for c in bundle.stats.features if group_of(c) == top.input]
            assert cols, top.input
            pdf[cols] = np.nan
        moved = base - float(bundle.predict_pandas(pdf)["hit_probability"].iloc[0])
        assert moved == pytest.approx(top.contribution, abs=1e-4), (track_id, top.input)
        assert [abs(r.contribution) for r in row.reasons] == sorted((abs(r.contribution) for r in row.reasons),
                                                                    reverse=True)


def test_changing_one_tracks_audio_rescores_that_track_only(spark, scored):
    cfg, trained, first = scored
    row = (read_table(spark, cfg, "spectrograms").where("status = 'ok' AND audio_path LIKE '%.wav'")
           .orderBy("track_id").first())
    write_tone(cfg.path("raw/audio") / row.audio_path, 3.0, freq=997.0)
    run_spectrograms(spark, cfg)
    version_before = spark.sql(f"DESCRIBE HISTORY delta.`{cfg.table('predictions')}`").first()["version"]
    s = run_scoring(spark, cfg, version=trained.version, as_of=first.as_of)
    assert rescored_in(spark, cfg, s.run_id) == {row.track_id}
    assert (s.rescored, s.unchanged, s.features_reused, s.encoded) == (1, first.tracks - 1, True, 1)
    embedding = (spark.read.format("delta").load(cfg.table("audio_embeddings"))
                 .where(F.col("track_id") == row.track_id).first())
    assert embedding.content_hash == read_table(spark, cfg, "spectrograms").where(
        F.col("track_id") == row.track_id).first().content_hash != row.content_hash
    changes = (spark.read.format("delta").option("readChangeFeed", "true")
               .option("startingVersion", version_before + 1).load(cfg.table("predictions")))
    assert {(r.track_id, r._change_type) for r in changes.collect()} == {
        (row.track_id, "update_preimage"), (row.track_id, "update_postimage")}


def test_new_tracks_are_scored_cold_start_and_nothing_else(spark, scored):
    cfg, trained, first = scored
    audio = read_table(spark, cfg, "spectrograms").where("status = 'ok'").orderBy("track_id").first().audio_path
    lines = []
    for i, track_id in enumerate(NEW):
        target = f"new/{track_id}.wav"
        (cfg.path("raw/audio") / "new").mkdir(parents=True, exist_ok=True)
        shutil.copy(cfg.path("raw/audio") / audio, cfg.path("raw/audio") / target)
        lines.append(json.dumps({"track_id": track_id, "title": f"New {i}", "artist_id": f"newart{i}",
                                 "artist_name": f"New Artist {i}", "genre": "pop", "release_date": "2025-12-20",
                                 "duration_ms": 180000, "audio_path": target}))
    (cfg.path("raw/catalog") / "catalog-new.jsonl").write_text("\n".join(lines) + "\n")
    run_ingest(spark, cfg)
    run_spectrograms(spark, cfg)
    s = run_scoring(spark, cfg, version=trained.version, as_of=first.as_of)
    assert rescored_in(spark, cfg, s.run_id) == set(NEW)
    assert (s.tracks, s.rescored, s.modes, s.features_reused) == (first.tracks + 2, 2, {"cold_start": 2}, False)
    assert s.encoded == 2


def test_events_before_as_of_rescore_exactly_their_tracks(spark, scored):
    cfg, trained, first = scored
    when = (first.as_of - dt.timedelta(days=3)).isoformat() + "T12:00:00Z"
    events = [{"event_id": f"x-{t}-{k}", "user_id": f"ux{k}", "track_id": t, "event_type": "play",
               "event_time": when, "ms_played": 150000} for t in NEW for k in range(3)]
    (cfg.path("raw/events") / "events-new.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    run_ingest(spark, cfg)
    s = run_scoring(spark, cfg, version=trained.version, as_of=first.as_of)
    assert rescored_in(spark, cfg, s.run_id) == set(NEW)
    assert s.modes == {"full": 2}
    assert s.encoded == 0          # their audio is as when this model encoded it: scored from the stored embedding
    features = spark.read.format("delta").load(cfg.table("scoring_features")).where(F.col("cutoff") == first.as_of)
    inputs = (scoring_inputs(features, read_table(spark, cfg, "spectrograms")).where(F.col("track_id").isin(*NEW))
              .toPandas().set_index("track_id").sort_index())
    want = load_bundle(trained.path).predict_pandas(inputs)["hit_probability"]
    got = {r.track_id: r.hit_probability for r in read_table(spark, cfg, "predictions").collect() if r.track_id in NEW}
    assert [got[t] for t in want.index] == pytest.approx(want.tolist(), abs=1e-6)
    plays = {r.track_id: r.plays_7d for r in spark.read.format("delta").load(cfg.table("scoring_features"))
             .where(F.col("track_id").isin(*NEW)).collect()}
    assert plays == {t: 3.0 for t in NEW}


def test_a_source_change_the_model_does_not_see_updates_the_fingerprint_only(spark, scored):
    """A new ``artist_name`` changes a track's sources (its ``source_hash``) but not what the model sees: the
    executors find its ``input_hash`` unchanged, and the run stores the new fingerprint alone, so the next
    run skips the track in Spark instead of sending it to the executors again."""
    cfg, trained, first = scored
    stored = read_table(spark, cfg, "predictions").where("mode = 'full'").orderBy("track_id").first()
    version_before = spark.sql(f"DESCRIBE HISTORY delta.`{cfg.table('predictions')}`").first()["version"]
    spark.sql(f"UPDATE delta.`{cfg.table('catalog')}` SET artist_name = 'Renamed Artist' "
              f"WHERE track_id = '{stored.track_id}'")
    s = run_scoring(spark, cfg, version=trained.version, as_of=first.as_of)
    assert (s.sent, s.refreshed, s.rescored, s.encoded) == (1, 1, 0, 0)
    assert rescored_in(spark, cfg, s.run_id) == set()
    now = read_table(spark, cfg, "predictions").where(F.col("track_id") == stored.track_id).first()
    assert now.source_hash != stored.source_hash
    assert (now.hit_probability, now.input_hash, now.run_id, now.reasons) == (
        stored.hit_probability, stored.input_hash, stored.run_id, stored.reasons)
    changes = (spark.read.format("delta").option("readChangeFeed", "true")
               .option("startingVersion", version_before + 1).load(cfg.table("predictions")))
    assert sorted((r.track_id, r._change_type, r.source_hash) for r in changes.collect()) == [
        (stored.track_id, "update_postimage", now.source_hash), (stored.track_id, "update_preimage", stored.source_hash)]
    again = run_scoring(spark, cfg, version=trained.version, as_of=first.as_of)
    assert (again.sent, again.refreshed, again.rescored, again.unchanged) == (0, 0, 0, s.tracks)


def compiled_classes(spark) -> int:
    """Classes Spark's code generator has compiled in this JVM so far (cache hits are not counted)."""
    return spark._jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME().getCount()


def test_a_run_like_the_previous_one_compiles_no_new_code(spark, scored):
    """A run (here: a catalog UPDATE, then an incremental run that MERGEs one new fingerprint) generates more
    classes than Spark's default cache of 100 holds; with hitcast's session (``CODEGEN_CACHE_ENTRIES``) the
    second run like it finds them all compiled, but for the few that hold the run's timestamp."""
    cfg, trained, first = scored
    track = read_table(spark, cfg, "predictions").where("mode = 'full'").orderBy("track_id").first().track_id
    new_classes = []
    for name in ("Artist A", "Artist B"):
        before = compiled_classes(spark)
        spark.sql(f"UPDATE delta.`{cfg.table('catalog')}` SET artist_name = '{name}' WHERE track_id = '{track}'")
        s = run_scoring(spark, cfg, version=trained.version, as_of=first.as_of)
        assert (s.sent, s.refreshed, s.rescored) == (1, 1, 0)
        new_classes.append(compiled_classes(spark) - before)
    assert new_classes[1] <= 4, new_classes


def test_a_full_run_rescores_every_track(spark, scored):
    cfg, trained, first = scored
    s = run_scoring(spark, cfg, version=trained.version, as_of=first.as_of, full=True, reasons=0)
    assert (s.rescored, s.unchanged) == (first.tracks + 2, 0)
    assert s.encoded == read_table(spark, cfg, "spectrograms").where("status = 'ok'").count()
    rows = read_table(spark, cfg, "predictions").where(F.col("run_id") == s.run_id).collect()
    assert len(rows) == first.tracks + 2 and all(r.reasons == [] for r in rows)


def test_a_run_that_dies_before_its_log_row_is_logged_by_the_next_run(spark, scored, monkeypatch):
    """The MERGE into ``predictions`` and the row in ``scoring_runs`` are two commits. A run that dies between
    them (here: its log append raises) has its commit found by the next run, which logs it from the table
    as that commit left it, once."""
    from hitcast.scoring import runlog

    cfg, trained, first = scored
    died: list[str] = []

    def dies(spark_, cfg_, run):
        died.append(run["run_id"])
        raise RuntimeError("the driver died before its log row")

    with monkeypatch.context() as m:
        m.setattr(runlog, "append_run", dies)
        with pytest.raises(RuntimeError, match="before its log row"):
            run_scoring(spark, cfg, version=trained.version, as_of=first.as_of, full=True, reasons=0)
    (lost,) = died
    assert run_row(spark, cfg, lost) is None
    rows = read_table(spark, cfg, "predictions").where(F.col("run_id") == lost).collect()
    modes: dict[str, int] = {}
    for r in rows:
        modes[r.mode] = modes.get(r.mode, 0) + 1
    assert len(rows) == first.tracks + 2
    commit = spark.sql(f"DESCRIBE HISTORY delta.`{cfg.table('predictions')}`").where("operation = 'MERGE'").first()
    assert json.loads(commit.userMetadata)[runlog.RUN_KEY]["run_id"] == lost

    s = run_scoring(spark, cfg, version=trained.version, as_of=first.as_of)
    assert (s.rescored, s.recovered) == (0, [lost])
    row, own = run_row(spark, cfg, lost), run_row(spark, cfg, s.run_id)
    assert (row.rescored, row.modes, row.full, row.as_of, row.tracks, row.unchanged) == (
        len(rows), modes, True, first.as_of, None, None)
    assert row.ended_at == commit.timestamp.replace(microsecond=0)
    assert row.note.startswith(f"logged by run {s.run_id}: this run committed predictions version {commit.version}")
    # Nothing changed since that commit: the recovered distribution is this run's, so its drift is nil.
    assert (row.score_histogram, row.score_quantiles) == (own.score_histogram, own.score_quantiles)
    assert own.psi == pytest.approx(0.0, abs=1e-12) and own.note is None

    again = run_scoring(spark, cfg, version=trained.version, as_of=first.as_of)
    assert again.recovered == []
    assert read_table(spark, cfg, "scoring_runs").where(F.col("run_id") == lost).count() == 1


def test_a_run_removes_the_scratch_folders_that_runs_which_died_left(spark, scored):
    """A run killed before its end leaves its staged rows in ``_staging``; the next run removes the folders
    older than ``score.staging_max_age_hours`` (a younger one may be another run's, still going)."""
    cfg, trained, first = scored
    staging = cfg.path(cfg.paths.warehouse) / "_staging" / "predictions"
    dead, young = staging / "20260101T000000-deadbeef", staging / "20260101T000000-0000cafe"
    for folder in (dead, young):
        folder.mkdir(parents=True)
        (folder / "part-00000.snappy.parquet").write_bytes(b"staged rows")
    then = time.time() - (cfg.score.staging_max_age_hours + 1) * 3600
    os.utime(dead, (then, then))
    run_scoring(spark, cfg, version=trained.version, as_of=first.as_of)
    assert sorted(p.name for p in staging.iterdir()) == [young.name]
    shutil.rmtree(young)


def test_predictions_keep_their_change_feed_and_history(spark, scored):
    cfg, _, _ = scored
    props = spark.sql(f"DESCRIBE DETAIL delta.`{cfg.table('predictions')}`").first()["properties"]
    assert {k: props.get(k) for k in ("delta.enableChangeDataFeed", "delta.enableDeletionVectors",
                                      "delta.logRetentionDuration", "delta.deletedFileRetentionDuration")} == {
        "delta.enableChangeDataFeed": "true", "delta.enableDeletionVectors": "true",
        "delta.logRetentionDuration": "interval 30 days",
        "delta.deletedFileRetentionDuration": "interval 30 days"}


def test_the_daily_run_takes_in_one_new_day_and_a_rerun_changes_no_table(spark, scored):
    """jobs/daily.py's stages in one session: a new day's event file is read (and only it), its events reach
    engagement_daily, the features as of the next day and the scores of its tracks; the same day again
    changes no table."""
    from hitcast.dailyrun import run_daily

    cfg, trained, first = scored
    day = first.as_of
    tracks = sorted(r.track_id for r in read_table(spark, cfg, "catalog").limit(2).collect())
    lines = [json.dumps({"event_id": f"day-{k}", "user_id": f"u-day-{k}", "track_id": t, "event_type": "play",
                         "event_time": f"{day}T0{k}:30:00Z", "ms_played": 120000}) + "\n"
             for k, t in enumerate(tracks * 2)]
    (cfg.path(cfg.ingest.events_path) / f"events-{day}.jsonl").write_text("".join(lines))
    as_of = day + dt.timedelta(days=1)
    plays_before = {r.track_id: r.plays_total for r in read_table(spark, cfg, "scoring_features").where(
        F.col("cutoff") == F.lit(first.as_of)).where(F.col("track_id").isin(tracks)).collect()}

    s = run_daily(spark, cfg, as_of=as_of, model_version=trained.version)
    assert [st.name for st in s.stages] == ["ingest", "spectrograms", "aggregates", "features", "scoring"]
    by = {st.name: st.changed for st in s.stages}
    assert by["ingest"].startswith("1 new event files, 4 events added")
    assert by["spectrograms"].startswith("0 decoded")
    assert "4 events into 2 new and 0 updated track-days" in by["aggregates"]
    assert by["features"] == f"as of {as_of}: computed"
    feats = {r.track_id: r for r in read_table(spark, cfg, "scoring_features").where(
        F.col("cutoff") == F.lit(as_of)).collect()}
    assert {t: feats[t].plays_total for t in tracks} == {t: (plays_before[t] or 0) + 2 for t in tracks}
    run = read_table(spark, cfg, "scoring_runs").orderBy(F.desc("ended_at")).first()
    assert run.as_of == as_of and set(tracks) <= rescored_in(spark, cfg, run.run_id)

    tables = ["catalog", "engagement_events", "engagement_daily", "ingested_files", "quarantine", "spectrograms",
              "scoring_features", "predictions", "scoring_runs", "audio_embeddings"]
    versions = {t: table_version(spark, cfg.table(t)) for t in tables}
    again = run_daily(spark, cfg, as_of=as_of, model_version=trained.version)
    assert {t: table_version(spark, cfg.table(t)) for t in tables} == versions
    by = {st.name: st.changed for st in again.stages}
    assert by["ingest"].startswith("0 new event files, 0 events added")
    assert by["aggregates"].startswith("current with engagement_events")
    assert by["features"] == f"as of {as_of}: reused"
    assert by["scoring"] == f"model {trained.version}: nothing changed since run {run.run_id}"
    assert str(again).splitlines()[0].startswith(f"daily run as of {as_of}: ")
