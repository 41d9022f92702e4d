"""``engagement_daily``: kept up to date by ingest from the events' change feed, and every feature computed from
it equals the event-level computation (tests/eventlevel.py), exactly, with distinct listeners within the
sketches' stated error; a late event changes its own day and the cutoffs after it, nothing else."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

import eventlevel
from helpers import make_config
from hitcast.demo.generate import generate_demo
from hitcast.features.daily import daily_aggregates
from hitcast.features.dailytable import read_state, update_engagement_daily
from hitcast.features.examples import feature_columns, features_for_cutoffs
from hitcast.features.labels import future_plays
from hitcast.ingest.pipeline import run_ingest
from hitcast.tables import table_version

TINY = ["demo.clip_seconds=0.5", "demo.events_per_track=60", "demo.mc_draws=20", "demo.listeners=3000",
        "ingest.now=2026-06-01"]
#: The error the README states for distinct listeners (features.listeners_lg_k = 14).
LISTENER_ERROR = 0.02


@pytest.fixture(scope="module")
def wh(spark, tmp_path_factory):
    cfg = make_config(tmp_path_factory.mktemp("daily"), *TINY)
    generate_demo(spark, cfg, tracks=120)
    run_ingest(spark, cfg)
    first = update_engagement_daily(spark, cfg)
    return cfg, first


def _read(spark, cfg, name):
    return spark.read.format("delta").load(cfg.table(name))


def _cutoffs(cfg):
    return [dt.date.fromisoformat(c) for c in cfg.features.cutoffs]


def test_first_update_builds_the_table_from_every_event(spark, wh):
    cfg, first = wh
    events = _read(spark, cfg, "engagement_events")
    assert first.mode == "rebuilt" and first.reason == "no earlier aggregates"
    assert first.events_added == events.count() and first.events_version == table_version(
        spark, cfg.table("engagement_events"))
    assert read_state(spark, cfg.table("engagement_daily")) == {"events_version": first.events_version, "lg_k": 14}
    expect = (events.groupBy("track_id", F.to_date("event_time").alias("event_date"))
              .agg(F.count(F.when(F.col("event_type") == "play", 1)).alias("plays"),
                   F.count(F.when(F.col("event_type") == "skip", 1)).alias("skips"),
                   F.sum(F.when(F.col("event_type") == "play", F.col("ms_played")).otherwise(0)).alias("ms_played"),
                   F.min("event_time").alias("first_event"), F.countDistinct("user_id").alias("listeners"),
                   F.count(F.lit(1)).alias("events")))
    got = _read(spark, cfg, "engagement_daily").select(
        "track_id", "event_date", "plays", "skips", "ms_played", "first_event",
        F.hll_sketch_estimate("listeners_sketch").alias("listeners"), "events")
    assertDataFrameEqual(got, expect)                    # a day's handful of listeners is counted exactly


def test_features_from_the_daily_aggregates_equal_the_event_level_ones(spark, wh):
    cfg, _ = wh
    catalog, events = _read(spark, cfg, "catalog"), _read(spark, cfg, "engagement_events")
    cuts = _cutoffs(cfg)
    windows = sorted(cfg.features.windows_days)
    listeners = [f"listeners_{w}d" for w in windows]
    exact = [c for c in feature_columns(windows) if c not in listeners]
    got = features_for_cutoffs(catalog, _read(spark, cfg, "engagement_daily"), cutoffs=cuts, cfg=cfg).cache()
    want = eventlevel.features_for_cutoffs(catalog, events, cutoffs=cuts, cfg=cfg).cache()
    assert got.count() == catalog.count() * len(cuts)
    assert want.where(F.col("plays_total") > 0).count() > 500             # the comparison is not vacuous
    keys = ["track_id", "cutoff", "cold_start"]
    assertDataFrameEqual(got.select(*keys, *exact), want.select(*keys, *exact), rtol=0, atol=0)
    pairs = got.select(*keys, *listeners).join(want.select(*keys, *[F.col(c).alias(f"w_{c}") for c in listeners]),
                                               keys)
    worst = pairs.select(F.greatest(*[F.abs(F.col(c) - F.col(f"w_{c}")) / F.greatest(F.col(f"w_{c}"), F.lit(1.0))
                                      for c in listeners]).alias("e")).agg(F.max("e")).first()[0]
    assert worst <= LISTENER_ERROR
    assert pairs.agg(F.max(f"w_{listeners[-1]}")).first()[0] >= 100      # windows with many listeners
    # labels from the days after each cutoff
    assertDataFrameEqual(future_plays(_read(spark, cfg, "engagement_daily"), cuts, cfg.features.horizon_days),
                         eventlevel.future_plays(events, eventlevel.cutoff_frame(spark, cuts),
                                                 cfg.features.horizon_days))


def test_reingesting_the_same_files_changes_nothing(spark, wh):
    cfg, _ = wh
    before = {t: table_version(spark, cfg.table(t)) for t in ("engagement_events", "engagement_daily")}
    run_ingest(spark, cfg)
    again = update_engagement_daily(spark, cfg)
    assert again.mode == "current" and again.events_added == 0
    assert {t: table_version(spark, cfg.table(t)) for t in before} == before


def test_a_late_event_changes_its_own_day_and_the_cutoffs_after_it(spark, wh):
    cfg, _ = wh
    daily = _read(spark, cfg, "engagement_daily")
    day = dt.date(2024, 9, 10)
    before_rows = daily.collect()
    # a track with a row on that day (a listener it had) and a day that had none (an earlier day)
    track = min(r.track_id for r in before_rows if r.event_date == day)
    track_days = {r.event_date for r in before_rows if r.track_id == track}
    empty = next(d for d in (day - dt.timedelta(days=k) for k in range(1, 60)) if d not in track_days)
    cuts = _cutoffs(cfg)
    before = {(r.track_id, r.cutoff): r
              for r in features_for_cutoffs(_read(spark, cfg, "catalog"), daily, cutoffs=cuts, cfg=cfg).collect()}
    late = [{"event_id": f"late-{k}", "user_id": user, "track_id": track, "event_type": kind,
             "event_time": f"{when}T12:00:00Z", "ms_played": ms}
            for k, (user, kind, when, ms) in enumerate([("u-late", "play", day, 60000),
                                                         ("u-late", "save", day, 0),
                                                         ("u-late-2", "play", empty, 90000)])]
    (cfg.path(cfg.ingest.events_path) / "late.jsonl").write_text("".join(json.dumps(e) + "\n" for e in late))
    run_ingest(spark, cfg)
    upd = update_engagement_daily(spark, cfg)
    assert (upd.mode, upd.events_added, upd.days_inserted, upd.days_updated) == ("incremental", 3, 1, 1)

    after = {(r.track_id, r.event_date): r for r in _read(spark, cfg, "engagement_daily").collect()}
    old = {(r.track_id, r.event_date): r for r in before_rows}
    changed = {k for k in after if k not in old or after[k] != old[k]}
    assert changed == {(track, day), (track, empty)} and set(old) <= set(after)
    a, o = after[(track, day)], old[(track, day)]
    assert (a.plays, a.saves, a.events, a.ms_played) == (o.plays + 1, o.saves + 1, o.events + 2, o.ms_played + 60000)
    assert a.first_event == min(o.first_event, dt.datetime.combine(day, dt.time(12)))
    assert (after[(track, empty)].plays, after[(track, empty)].events) == (1, 1)

    now = {(r.track_id, r.cutoff): r for r in features_for_cutoffs(
        _read(spark, cfg, "catalog"), _read(spark, cfg, "engagement_daily"), cutoffs=cuts, cfg=cfg).collect()}
    assert set(now) == set(before)
    moved = {k for k in now if now[k] != before[k]}
    assert moved and all(c > empty for _, c in moved)                   # no cutoff before the late days
    first_after = min(c for c in cuts if c > day)
    assert (track, first_after) in moved
    assert now[(track, first_after)].plays_total == before[(track, first_after)].plays_total + 2


def test_the_incremental_table_equals_a_rebuild_and_a_new_sketch_size_rebuilds(spark, wh):
    cfg, _ = wh
    est = F.hll_sketch_estimate("listeners_sketch").alias("listeners")
    cols = ["track_id", "event_date", "plays", "skips", "saves", "playlist_adds", "shares", "ms_played",
            "first_event", "events"]
    incremental = _read(spark, cfg, "engagement_daily").select(*cols, est).collect()
    rebuilt = daily_aggregates(_read(spark, cfg, "engagement_events"), 14).select(*cols, est)
    assertDataFrameEqual(rebuilt, incremental)
    coarse = make_config(cfg.path(cfg.paths.root), *TINY, "features.listeners_lg_k=12")
    upd = update_engagement_daily(spark, coarse)
    assert upd.mode == "rebuilt" and upd.reason == "listeners_lg_k 14 -> 12"
    assert read_state(spark, cfg.table("engagement_daily"))["lg_k"] == 12
    assertDataFrameEqual(_read(spark, cfg, "engagement_daily").select(*cols, est), incremental)
