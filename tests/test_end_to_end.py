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
from hitcast.scoring.inputs import scoring_inputs
from hitcast.scoring.stage import run_scoring
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
    assert first.tracks == first.rescored == first.table_rows == len(catalog) and first.unchanged == 0


def test_each_stored_score_is_the_bundles_score_for_that_tracks_inputs(spark, pipeline):
    """The Spark path (mapInArrow over repartitioned batches, the explaining split model, MERGE) stores, for
    every track, what the model bundle gives for that track's own scoring inputs in one driver call."""
    cfg, _, trained, first = pipeline
    features = features_as_of(read_table(spark, cfg, "catalog"), read_table(spark, cfg, "engagement_events"),
                               as_of=first.as_of, cfg=cfg)
    inputs = scoring_inputs(features, read_table(spark, cfg, "spectrograms")).toPandas()
    scores = load_bundle(trained.path).predict_pandas(inputs)
    assert scores["hit_probability"].nunique() > len(inputs) // 2      # scores differ between tracks
    # mode: cold start without engagement before as_of, else no_audio without an ok spectrogram, else full
    modes = ["cold_start" if c else "no_audio" if s != "ok" else "full"
             for c, s in zip(inputs["cold_start"], inputs["status"])]
    assert {"no_audio", "full"} <= set(modes)           # (cold start is checked a year earlier, below)
    expected = [Row(track_id=t, model_version=trained.version, hit_probability=float(h), popularity_score=float(p),
                    mode=m, audio_status=s, as_of=first.as_of, run_id=first.run_id)
                for t, h, p, m, s in zip(inputs["track_id"], scores["hit_probability"], scores["popularity_score"],
                                         modes, inputs["status"])]
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
        assert (row.mode == "cold_start") == (track_id not in seen), track_id


def tracks_with_events_before(spark, cfg, as_of: dt.date) -> set[str]:
    """Track ids with at least one ``engagement_events`` row before ``as_of`` (00:00 UTC)."""
    events = read_table(spark, cfg, "engagement_events")
    return {r.track_id for r in events.filter(F.col("event_time") < F.lit(as_of).cast("timestamp"))
            .select("track_id").distinct().collect()}


def test_rescoring_updates_in_place(spark, pipeline):
    cfg, _, trained, first = pipeline
    before = read_table(spark, cfg, "predictions").collect()
    # nothing changed: no track is rescored and the table keeps every row as it was
    again = run_scoring(spark, cfg, version=trained.version, as_of=first.as_of)
    assert (again.tracks, again.rescored, again.unchanged, again.table_rows) == (len(before), 0, len(before),
                                                                               len(before))
    assertDataFrameEqual(read_table(spark, cfg, "predictions"), before, rtol=0, atol=0)
    # full=True rescores every track in place: the same scores, now from the new run
    forced = run_scoring(spark, cfg, version=trained.version, as_of=first.as_of, full=True)
    assert (forced.rescored, forced.table_rows) == (len(before), len(before))
    assertDataFrameEqual(read_table(spark, cfg, "predictions").select("track_id", "hit_probability", "run_id"),
                         [Row(track_id=r.track_id, hit_probability=r.hit_probability, run_id=forced.run_id)
                          for r in before], rtol=0, atol=1e-6)


def test_scoring_an_earlier_as_of_date_changes_features_not_rows(spark, pipeline):
    cfg, _, trained, first = pipeline
    early = first.as_of - dt.timedelta(days=365)
    s = run_scoring(spark, cfg, version=trained.version, as_of=early)
    preds = read_table(spark, cfg, "predictions").collect()
    assert s.table_rows == len(preds) == first.tracks == s.rescored
    assert {r.as_of for r in preds} == {early}
    # a year earlier, exactly the tracks without an event before that date are cold start
    seen = tracks_with_events_before(spark, cfg, early)
    cold = {r.track_id for r in preds} - seen
    assert {r.track_id for r in preds if r.mode == "cold_start"} == cold
    assert s.modes["cold_start"] == len(cold) > first.modes.get("cold_start", 0)
