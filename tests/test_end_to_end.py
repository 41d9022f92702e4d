"""The whole pipeline on ~100 generated tracks: generate, ingest, features, spectrograms, 2-worker training,
promotion, catalog scoring; then the predictions table is checked row by row against the catalog."""
from __future__ import annotations

import datetime as dt
import math

import pytest
from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from helpers import make_config
from hitcast.demo.generate import generate_demo
from hitcast.features.examples import features_as_of
from hitcast.features.stage import run_features
from hitcast.ingest.pipeline import run_ingest
from hitcast.model.bundle import load_bundle
from hitcast.model.promote import run_promote
from hitcast.model.training import table_inputs, train_model
from hitcast.scoring.stage import run_scoring, scoring_inputs
from hitcast.spectrograms.stage import run_spectrograms
from hitcast.tables import read_table

E2E_SETTINGS = [
    "demo.tracks=100", "demo.events_per_track=60", "demo.clip_seconds=3.0", "dsp.clip_seconds=3.0",
    "train.epochs=2", "train.batch_size=16", "train.workers=2",
]


@pytest.fixture(scope="module")
def pipeline(spark, tmp_path_factory):
    cfg = make_config(tmp_path_factory.mktemp("e2e"), *E2E_SETTINGS)
    generated = generate_demo(spark, cfg)
    run_ingest(spark, cfg)
    run_features(spark, cfg)
    run_spectrograms(spark, cfg)
    examples, spectrograms, inputs = table_inputs(spark, cfg)
    trained = train_model(spark, cfg, examples, spectrograms=spectrograms, inputs=inputs)
    assert run_promote(spark, cfg).version == trained.version        # the first model becomes the champion
    first = run_scoring(spark, cfg)
    return cfg, generated, trained, first


def test_every_catalog_track_is_scored_exactly_once(spark, pipeline):
    cfg, _, trained, first = pipeline
    catalog = {r.track_id: r for r in read_table(spark, cfg, "catalog").collect()}
    preds = read_table(spark, cfg, "predictions").collect()
    by_track: dict[str, list] = {}
    for row in preds:
        by_track.setdefault(row.track_id, []).append(row)
    assert set(by_track) == set(catalog)
    assert all(len(rows) == 1 for rows in by_track.values()), "a track was scored twice"
    assert not any(math.isnan(row.hit_probability) for row in preds)
    assert first.scored == len(catalog) and first.table_rows == len(catalog)


def test_each_stored_score_is_the_bundles_score_for_that_tracks_inputs(spark, pipeline):
    """The Spark path (mapInArrow over repartitioned batches, join back on track_id, MERGE) stores, for
    every track, what the model bundle gives for that track's own scoring inputs in one driver call."""
    cfg, _, trained, first = pipeline
    features = features_as_of(read_table(spark, cfg, "catalog"), read_table(spark, cfg, "engagement_events"),
                               as_of=first.as_of, cfg=cfg)
    inputs = scoring_inputs(features, read_table(spark, cfg, "spectrograms")).toPandas()
    scores = load_bundle(trained.path).predict_pandas(inputs)
    assert scores["hit_probability"].nunique() > len(inputs) // 2      # scores differ between tracks
    expected = [Row(track_id=t, model_version=trained.version, hit_probability=float(h), popularity_score=float(p),
                    cold_start=bool(c), audio_status=s, as_of=first.as_of)
                for t, h, p, c, s in zip(inputs["track_id"], scores["hit_probability"], scores["popularity_score"],
                                         inputs["cold_start"], inputs["status"])]
    stored = read_table(spark, cfg, "predictions").select(*expected[0].__fields__)
    assertDataFrameEqual(stored, expected, rtol=1e-6, atol=1e-5)


def test_bad_audio_and_cold_start_tracks_are_scored_with_their_status(spark, pipeline):
    cfg, _, _, first = pipeline
    spec = {r.track_id: r.status for r in read_table(spark, cfg, "spectrograms").collect()}
    preds = {r.track_id: r for r in read_table(spark, cfg, "predictions").collect()}
    for track_id, row in preds.items():
        assert row.audio_status == spec.get(track_id, "no_spectrogram"), track_id
    # The generator plants missing, empty and truncated audio: they are scored all the same.
    bad = {t for t, s in spec.items() if s != "ok"}
    assert {"missing", "empty"} <= {spec[t] for t in bad}
    assert bad <= set(preds)
    # Cold start exactly when the track has no event before the as-of date.
    seen = tracks_with_events_before(spark, cfg, first.as_of)
    for track_id, row in preds.items():
        assert row.cold_start == (track_id not in seen), track_id


def tracks_with_events_before(spark, cfg, as_of: dt.date) -> set[str]:
    """Track ids with at least one ``engagement_events`` row before ``as_of`` (00:00 UTC)."""
    events = read_table(spark, cfg, "engagement_events")
    return {r.track_id for r in events.filter(F.col("event_time") < F.lit(as_of).cast("timestamp"))
            .select("track_id").distinct().collect()}


def test_rescoring_updates_in_place(spark, pipeline):
    cfg, _, trained, first = pipeline
    before = {r.track_id: r for r in read_table(spark, cfg, "predictions").collect()}
    again = run_scoring(spark, cfg, version=trained.version, as_of=first.as_of)
    after = {r.track_id: r for r in read_table(spark, cfg, "predictions").collect()}
    assert again.table_rows == len(before)
    assert after.keys() == before.keys()
    assert all(abs(after[t].hit_probability - before[t].hit_probability) < 1e-6 for t in before)
    # the matched rows were rewritten by the second run (its scored_at), not left as they were
    assert {r.scored_at for r in after.values()} == {max(r.scored_at for r in after.values())}
    assert all(after[t].scored_at > before[t].scored_at for t in before)


def test_scoring_an_earlier_as_of_date_changes_features_not_rows(spark, pipeline):
    cfg, _, trained, first = pipeline
    early = first.as_of - dt.timedelta(days=365)
    s = run_scoring(spark, cfg, version=trained.version, as_of=early)
    preds = read_table(spark, cfg, "predictions").collect()
    assert s.table_rows == len(preds) == first.scored
    assert {r.as_of for r in preds} == {early}
    # a year earlier, exactly the tracks without an event before that date are cold start
    seen = tracks_with_events_before(spark, cfg, early)
    assert {r.track_id for r in preds if r.cold_start} == {r.track_id for r in preds} - seen
    assert s.cold_start == len(preds) - len(seen & {r.track_id for r in preds}) > first.cold_start
