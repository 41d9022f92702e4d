"""Property: adding any events at or after the cutoff T never changes the features as of T.

Each draw builds a random little catalog and random history (with events before AND after T), then adds
a random number of extra events at or after T (some exactly at T, some for tracks of other draws or for
unknown tracks). The draws are namespaced by track id and computed together, so several independent
draws cost two Spark jobs.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from helpers import make_config
from hitcast.features.daily import daily_aggregates
from hitcast.features.examples import build_training_examples, feature_columns, features_as_of
from hitcast.schemas import CATALOG, ID_COLUMNS

T = dt.datetime(2025, 5, 1)
TYPES = ["play", "skip", "save", "playlist_add", "share"]
EVENTS_DDL = "event_id string, user_id string, track_id string, event_type string, event_time timestamp, ms_played long"
DRAWS = 6


def draw(k: int, rng: np.random.Generator):
    names = [f.name for f in CATALOG.fields]
    tracks, base, extra = [], [], []
    n_tracks = int(rng.integers(2, 7))
    for i in range(n_tracks):
        rec = dict.fromkeys(names)
        rec.update(track_id=f"d{k}t{i}", artist_id=f"d{k}a{int(rng.integers(0, 2))}", genre="pop",
                   release_date=(T + dt.timedelta(days=int(rng.integers(-150, 20)))).date(),
                   duration_ms=int(rng.integers(100_000, 300_000)), explicit=bool(rng.random() < 0.5),
                   danceability=float(rng.random()))
        tracks.append(tuple(rec[n] for n in names))

    def event(tag: str, j: int, when: dt.datetime, track: str):
        return (f"d{k}{tag}{j}", f"u{int(rng.integers(0, 6))}", track, TYPES[int(rng.integers(0, 5))], when,
                int(rng.integers(0, 300_000)))

    ids = [t[0] for t in tracks]
    for j in range(int(rng.integers(0, 120))):
        when = T + dt.timedelta(seconds=int(rng.integers(-120 * 86400, 60 * 86400)))
        base.append(event("b", j, when, ids[int(rng.integers(0, len(ids)))]))
    for j in range(int(rng.integers(1, 60))):
        offset = 0 if rng.random() < 0.2 else int(rng.integers(0, 100 * 86400))
        track = ids[int(rng.integers(0, len(ids)))] if rng.random() < 0.8 else f"unknown{j}"
        extra.append(event("x", j, T + dt.timedelta(seconds=offset), track))
    return tracks, base, extra


def test_features_as_of_t_ignore_events_at_or_after_t(spark, tmp_path):
    cfg = make_config(tmp_path, "features.cutoffs=[2025-05-01]", "features.cold_start_days=30")
    rng = np.random.default_rng(20250501)
    tracks, base, extra = [], [], []
    for k in range(DRAWS):
        t, b, x = draw(k, rng)
        tracks += t
        base += b
        extra += x
    assert all(e[4] >= T for e in extra) and any(e[4] == T for e in extra) and any(e[4] > T for e in base)
    catalog = spark.createDataFrame(tracks, CATALOG)
    before_ev = daily_aggregates(spark.createDataFrame(base, EVENTS_DDL), cfg.features.listeners_lg_k)
    after_ev = daily_aggregates(spark.createDataFrame(base + extra, EVENTS_DDL), cfg.features.listeners_lg_k)

    before = features_as_of(catalog, before_ev, as_of=T.date(), cfg=cfg).collect()
    assert len(before) == len(tracks) and sum(r.plays_total or 0 for r in before) > 0   # history did count
    # whole rows, every draw, exactly
    assertDataFrameEqual(features_as_of(catalog, after_ev, as_of=T.date(), cfg=cfg), before, rtol=0, atol=0)
    # the same holds for the feature part of training_examples (only labels may move)
    cols = ID_COLUMNS + feature_columns(sorted(cfg.features.windows_days))
    assertDataFrameEqual(build_training_examples(catalog, after_ev, cfg).select(*cols),
                         build_training_examples(catalog, before_ev, cfg).select(*cols), rtol=0, atol=0)
    # ... and the extra events did reach the label window, so the check is not vacuous
    labels = build_training_examples(catalog, after_ev, cfg).agg(F.sum("future_plays")).first()[0]
    assert labels > build_training_examples(catalog, before_ev, cfg).agg(F.sum("future_plays")).first()[0]
