"""Ingest: explicit contracts, quarantine reasons, collision rule, idempotent MERGE, unknown tracks."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from helpers import make_config
from hitcast.ingest.pipeline import run_ingest

ROOT = Path(__file__).resolve().parents[1]
HEADER = "track_id,title,artist_name,release_date,audio_path,duration_ms,explicit,updated_at,danceability"
CATALOG_A = [
    "t1,One,Ann,2025-01-01,a/t1.wav,200000,true,2025-01-01T00:00:00Z,0.5",
    "t2,Two,Ann,2025-01-02,a/t2.wav,210000,false,2025-01-02T00:00:00Z,0.6",
    ",Orphan,Ann,2025-01-03,a/x.wav,1000,false,,0.1",                      # missing_track_id
    "t4,Four,Bob,2025-13-45,a/t4.wav,1000,false,,0.1",                     # bad_release_date
    "t5,Five,Bob,2025-01-05,a/t5.wav,lots,false,,0.1",                     # bad_value duration_ms
    "t6,Six,,2025-01-06,a/t6.wav,1000,false,,0.1",                         # missing_required_value artist_name
]
CATALOG_B = [
    {"track_id": "t1", "title": "One (alt)", "artist_name": "Ann", "release_date": "2025-01-01",
     "audio_path": "a/t1.flac", "updated_at": "2025-01-01T00:00:00Z"},      # same updated_at: later file wins
    {"track_id": "t2", "title": "Two (remastered)", "artist_name": "Ann", "release_date": "2025-01-02",
     "audio_path": "a/t2.wav", "updated_at": "2025-06-01T00:00:00Z"},      # later updated_at: an update
]
NOW = "2026-01-01T00:00:00"


def ev(i, track="t1", kind="play", time="2025-02-01T10:00:00Z", ms=1000, **kw):
    rec = {"event_id": f"e{i}", "user_id": "u1", "track_id": track, "event_type": kind, "event_time": time,
           "ms_played": ms}
    rec.update(kw)
    return json.dumps(rec)


EVENTS_1 = [
    ev(1), ev(2, track="tX"), ev(1, ms=2),                 # e2: unknown track (kept); second e1: duplicate_event
    ev(4, ms=-5), ev(5, time="2026-01-03T00:00:00Z"),      # negative_ms_played; future_event_time (> now + 24 h)
    ev(6, kind="like"), '{"event_id": "e7", ', ev(8, time="yesterday"), ev(9, event_id=""), ev(10, ms="abc"),
    ev(11, time="2026-01-01T20:00:00Z"),                   # within the 24 h tolerance: kept
]


def write_raw(cfg):
    raw = cfg.path(cfg.paths.raw)
    (raw / "catalog").mkdir(parents=True)
    (raw / "events").mkdir(parents=True)
    (raw / "catalog" / "cat-a.csv").write_text("\n".join([HEADER, *CATALOG_A]) + "\n")
    (raw / "catalog" / "cat-b.jsonl").write_text("\n".join(json.dumps(r) for r in CATALOG_B) + "\nnot json\n")
    (raw / "events" / "events-1.jsonl").write_text("\n".join(EVENTS_1) + "\n")
    return raw


TABLES = ("catalog", "engagement_events", "quarantine")


def snapshot(spark, cfg) -> dict[str, list[Row]]:
    return {name: spark.read.format("delta").load(cfg.table(name)).collect() for name in TABLES}


def assert_tables_hold(spark, cfg, snap: dict[str, list[Row]]) -> None:
    """Every table holds exactly the rows of ``snap``, whole rows."""
    for name in TABLES:
        assertDataFrameEqual(spark.read.format("delta").load(cfg.table(name)), snap[name], rtol=0, atol=0)


@pytest.fixture(scope="module")
def ingested(spark, tmp_path_factory):
    cfg = make_config(tmp_path_factory.mktemp("ingest"), f"ingest.now={NOW}")
    raw = write_raw(cfg)
    first = run_ingest(spark, cfg)
    return cfg, raw, first, snapshot(spark, cfg)


def test_each_bad_record_lands_in_quarantine_with_its_reason(spark, ingested):
    cfg, _, summary, snap = ingested
    q = spark.read.format("delta").load(cfg.table("quarantine"))
    reason = Row("source", "source_file", "reason", "detail")
    assertDataFrameEqual(q.select("source", "source_file", "reason", F.coalesce("detail", F.lit("")).alias("detail")), [
        reason("catalog", "cat-a.csv", "bad_release_date", ""),
        reason("catalog", "cat-a.csv", "bad_value", "duration_ms"),
        reason("catalog", "cat-a.csv", "duplicate_track_id", "track_id=t1"),
        reason("catalog", "cat-a.csv", "missing_required_value", "artist_name"),
        reason("catalog", "cat-a.csv", "missing_track_id", ""),
        reason("catalog", "cat-b.jsonl", "malformed_json", ""),
        reason("events", "events-1.jsonl", "bad_event_time", ""),
        reason("events", "events-1.jsonl", "bad_ms_played", ""),
        reason("events", "events-1.jsonl", "duplicate_event", ""),
        reason("events", "events-1.jsonl", "future_event_time", ""),
        reason("events", "events-1.jsonl", "malformed_json", ""),
        reason("events", "events-1.jsonl", "missing_event_id", ""),
        reason("events", "events-1.jsonl", "negative_ms_played", ""),
        reason("events", "events-1.jsonl", "unknown_event_type", ""),
    ])
    raw = {r["reason"]: r["raw_record"] for r in q.where("source = 'events'").collect()}
    assert raw["malformed_json"] == '{"event_id": "e7", ' and json.loads(raw["duplicate_event"])["ms_played"] == 2
    assert all(r["ingested_at"] == dt.datetime(2026, 1, 1) for r in q.collect())
    assert summary.catalog.rows_read == 9 and summary.catalog.rows_valid == 2
    assert summary.catalog.quarantined == {"bad_release_date": 1, "bad_value": 1, "duplicate_track_id": 1,
                                           "missing_required_value": 1, "missing_track_id": 1, "malformed_json": 1}
    assert summary.events.rows_read == 11 and summary.events.rows_valid == 3 and summary.events.rows_inserted == 3
    assert summary.events.quarantined == {"malformed_json": 1, "missing_event_id": 1, "unknown_event_type": 1,
                                          "bad_event_time": 1, "bad_ms_played": 1, "negative_ms_played": 1,
                                          "future_event_time": 1, "duplicate_event": 1}


def test_catalog_collisions_resolved_by_updated_at_then_file_name(spark, ingested):
    cfg, _, summary, _ = ingested
    track = Row("track_id", "title", "audio_path", "source_file", "explicit", "duration_ms")
    assertDataFrameEqual(spark.read.format("delta").load(cfg.table("catalog")).select(*track),
                         [track("t1", "One (alt)", "a/t1.flac", "cat-b.jsonl", None, None),
                          track("t2", "Two (remastered)", "a/t2.wav", "cat-b.jsonl", None, None)])
    assert (summary.catalog_collisions, summary.catalog_updates, summary.catalog_identical) == (2, 1, 0)


def test_unknown_track_events_are_kept_and_flagged(spark, ingested):
    cfg, _, summary, _ = ingested
    event = Row("event_id", "track_id", "known_track", "ms_played", "event_date")
    assertDataFrameEqual(spark.read.format("delta").load(cfg.table("engagement_events")).select(*event),
                         [event("e1", "t1", True, 1000, dt.date(2025, 2, 1)),
                          event("e11", "t1", True, 1000, dt.date(2026, 1, 1)),
                          event("e2", "tX", False, 1000, dt.date(2025, 2, 1))])
    assert summary.unknown_track_events == 1


def test_reingest_is_idempotent_and_new_files_add_only_new_rows(spark, ingested):
    cfg, raw, _, before = ingested
    again = run_ingest(spark, cfg)
    assert_tables_hold(spark, cfg, before)           # every table identical, row for row
    assert (again.catalog.rows_inserted, again.catalog.rows_updated, again.events.rows_inserted) == (0, 0, 0)
    assert again.catalog.quarantine_inserted == 0 and again.events.quarantine_inserted == 0
    # A new events file: one new event, one re-delivered event; a new catalog file brings track tX.
    (raw / "events" / "events-2.jsonl").write_text("\n".join([ev(1), ev(20, track="tX")]) + "\n")
    (raw / "catalog" / "cat-c.csv").write_text(HEADER + "\ntX,Ex,Cy,2025-01-09,a/tx.wav,1000,false,,0.2\n")
    third = run_ingest(spark, cfg)
    assert (third.catalog.rows_inserted, third.events.rows_inserted, third.events.quarantine_inserted) == (1, 1, 1)
    assert third.known_track_flipped == 1
    after = snapshot(spark, cfg)
    assert len(after["engagement_events"]) == 4 and len(after["catalog"]) == 3
    events = spark.read.format("delta").load(cfg.table("engagement_events"))
    assertDataFrameEqual(events.select("event_id", "known_track"), [
        Row(event_id="e1", known_track=True), Row(event_id="e11", known_track=True),
        Row(event_id="e2", known_track=True), Row(event_id="e20", known_track=True)])
    new_q = set(after["quarantine"]) - set(before["quarantine"])
    assert [(r.source, r.source_file, r.reason) for r in new_q] == [("events", "events-2.jsonl", "duplicate_event")]
    assert run_ingest(spark, cfg).events.rows_inserted == 0
    assert_tables_hold(spark, cfg, after)


def test_spotify_hit_predictor_loads_through_configuration_alone(spark, shared_data, tmp_path):
    folder = shared_data / "spotify-hit-predictor"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    from hitcast.config import load_config
    cfg = load_config(ROOT / "conf" / "spotify-hit-predictor.yaml",
                      ["spark.master=local[2]", f"paths.warehouse={tmp_path / 'wh'}",
                       f"ingest.events_path={tmp_path / 'no-events'}"])
    assert cfg.path(cfg.ingest.catalog_path) == folder.resolve()
    summary = run_ingest(spark, cfg)
    src = pd.concat([pd.read_csv(p) for p in sorted(folder.glob("*.csv"))], ignore_index=True)
    n_unique = src["uri"].nunique()
    cat = spark.read.format("delta").load(cfg.table("catalog"))
    assert cat.count() == n_unique == summary.catalog.rows_valid
    assert summary.catalog.quarantined == {"duplicate_track_id": len(src) - n_unique}
    row = cat.where("track_id = 'spotify:track:1dtKN6wwlolkM8XZy2y9C1'").collect()[0]
    assert (row["title"], row["artist_name"], row["release_date"], row["known_label"], row["danceability"],
            row["duration_ms"], row["audio_path"]) == ("Jealous Kind Of Fella", "Garland Green",
                                                       dt.date(1960, 1, 1), 1, 0.417, 173533, None)
    decades = {r["release_date"].year for r in cat.select("release_date").distinct().collect()}
    assert decades == {1960, 1970, 1980, 1990, 2000, 2010}


@pytest.mark.parametrize("job,words", [("generate_demo.py", "--tracks"), ("ingest.py", "quarantine"),
                                       ("features.py", "--cutoffs")])
def test_job_help(job, words):
    out = subprocess.run([sys.executable, str(ROOT / "jobs" / job), "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--conf" in out.stdout and "--set" in out.stdout and words in out.stdout
