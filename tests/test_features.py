"""Point-in-time features, artist features, labels and splits on a handful of literal rows."""
from __future__ import annotations

import dataclasses
import datetime as dt
import math

import pytest
from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from helpers import make_config
from hitcast.features.daily import daily_aggregates
from hitcast.features.examples import (SCORING_ID_COLUMNS, build_training_examples, feature_columns, features_as_of)
from hitcast.features.stage import write_training_examples
from hitcast.errors import ConfigError
from hitcast.features.splits import add_split, check_time_split
from hitcast.schemas import CATALOG, ID_COLUMNS, LABEL_COLUMNS

T = dt.date(2025, 3, 1)
EVENTS_DDL = "event_id string, user_id string, track_id string, event_type string, event_time timestamp, ms_played long"


def _ts(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s)


def catalog_df(spark, rows):
    """rows: (track_id, artist_id, genre, release_date, duration_ms, explicit, danceability)."""
    names = [f.name for f in CATALOG.fields]
    full = []
    for tid, art, genre, rel, dur, expl, dance in rows:
        rec = dict.fromkeys(names)
        rec.update(track_id=tid, artist_id=art, artist_name=f"name-{art}", genre=genre,
                   release_date=dt.date.fromisoformat(rel), duration_ms=dur, explicit=expl, danceability=dance)
        full.append(tuple(rec[n] for n in names))
    return spark.createDataFrame(full, CATALOG)


def events_df(spark, rows):
    """The daily aggregates (what every feature reads) of these events."""
    ev = spark.createDataFrame([(f"e{i}", u, t, k, _ts(ts), ms) for i, (u, t, k, ts, ms) in enumerate(rows)],
                               EVENTS_DDL)
    return daily_aggregates(ev, 14)


CATALOG_ROWS = [
    ("A", "X", "pop", "2025-01-01", 200000, True, 0.5),
    ("B", "X", "pop", "2025-02-25", 180000, False, 0.7),
    ("C", "Y", "rock", "2025-03-05", 240000, None, None),   # released 4 days after T: cold-start example
    ("D", "Y", "rock", "2025-04-01", 240000, False, 0.1),   # outside the cohort (released > T + 7 days)
]
EVENT_ROWS = [
    ("u1", "A", "play", "2025-02-27T10:00:00", 100000),
    ("u2", "A", "play", "2025-02-27T11:00:00", 200000),
    ("u1", "A", "skip", "2025-02-26T09:00:00", 5000),
    ("u1", "A", "save", "2025-02-27T10:05:00", 0),
    ("u3", "A", "play", "2025-02-20T08:00:00", 150000),      # [T-14d, T-7d): previous week
    ("u4", "A", "play", "2025-01-10T08:00:00", 150000),      # older than 28 days
    ("u5", "A", "play", "2025-03-01T00:00:00", 150000),      # exactly T: label window, not features
    ("u1", "A", "play", "2025-03-05T00:00:00", 150000),
    ("u2", "A", "play", "2025-03-06T00:00:00", 150000),
    ("u3", "A", "play", "2025-03-14T23:59:59", 150000),      # last second of [T, T+14d)
    ("u3", "A", "play", "2025-03-15T00:00:00", 150000),      # T + 14 days: outside the label window
    ("u9", "B", "play", "2025-03-02T00:00:00", 150000),
    *[(f"u{i}", "C", "play", "2025-03-06T00:00:00", 100000) for i in range(5)],
    ("u1", "Z", "play", "2025-02-27T00:00:00", 1000),        # unknown track: ignored
]


@pytest.fixture
def fcfg(tmp_path):
    return make_config(tmp_path, "features.cutoffs=[2025-03-01]", "features.windows_days=[7, 28]",
                       "features.horizon_days=14", "features.hit_share=0.5", "features.cold_start_days=7",
                       "features.validation_cutoffs=[]", "features.test_cutoffs=[2025-03-01]")


def test_features_as_of_exact_values(spark, fcfg):
    cat, ev = catalog_df(spark, CATALOG_ROWS), events_df(spark, EVENT_ROWS)
    features = features_as_of(cat, ev, as_of="2025-03-01", cfg=fcfg)
    # one row for every catalog track, whatever its release date
    assertDataFrameEqual(features.select("track_id"), [Row(track_id=t) for t in "ABCD"])
    rows = {r["track_id"]: r.asDict() for r in features.collect()}
    a = rows["A"]
    assert a["cutoff"] == T and a["cold_start"] is False and a["genre"] == "pop"
    assert a["plays_7d"] == 2.0 and a["listeners_7d"] == 2.0
    assert a["skip_rate_7d"] == pytest.approx(1 / 3) and a["save_rate_7d"] == pytest.approx(0.5)
    assert a["completion_7d"] == pytest.approx(0.75) and a["playlist_adds_7d"] == 0.0 and a["shares_7d"] == 0.0
    assert a["plays_28d"] == 3.0 and a["listeners_28d"] == 3.0 and a["skip_rate_28d"] == pytest.approx(0.25)
    assert a["plays_total"] == 4.0 and a["days_since_first_event"] == 50.0 and a["days_since_release"] == 59.0
    assert a["trend_7d"] == pytest.approx(math.log(3) - math.log(2))
    assert a["duration_s"] == 200.0 and a["explicit"] == 1.0 and a["danceability"] == 0.5
    assert a["artist_tracks_before"] == 0.0 and a["artist_plays_28d"] is None and a["artist_save_rate_28d"] is None
    b = rows["B"]
    assert b["cold_start"] is True
    engagement = ["plays_7d", "listeners_7d", "skip_rate_7d", "save_rate_28d", "completion_28d", "trend_7d",
                  "plays_total", "days_since_first_event"]
    assert all(b[c] is None for c in engagement)      # cold start: NULL, never 0
    assert b["artist_tracks_before"] == 1.0 and b["artist_plays_7d"] == 2.0 and b["artist_plays_28d"] == 3.0
    assert b["artist_plays_total"] == 4.0 and b["artist_save_rate_28d"] == pytest.approx(1 / 3)
    c = rows["C"]
    assert c["cold_start"] is True and c["days_since_release"] == -4.0 and c["explicit"] is None
    assert c["artist_tracks_before"] == 0.0          # D is released later than C
    assert rows["D"]["artist_tracks_before"] == 0.0  # C is not released before T
    assert list(rows["A"]) == SCORING_ID_COLUMNS + feature_columns([7, 28])


def test_zero_plays_in_window_gives_null_rates_not_cold_start(spark, fcfg):
    cat = catalog_df(spark, [("A", "X", "pop", "2024-06-01", 200000, False, 0.5)])
    ev = events_df(spark, [("u1", "A", "play", "2025-01-15T00:00:00", 1000)])   # 45 days before T
    r = features_as_of(cat, ev, as_of=T, cfg=fcfg).collect()[0]
    assert r["cold_start"] is False and r["plays_7d"] == 0.0 and r["plays_28d"] == 0.0
    assert r["skip_rate_7d"] is None and r["save_rate_28d"] is None and r["completion_28d"] is None
    assert r["listeners_28d"] == 0.0 and r["plays_total"] == 1.0 and r["trend_7d"] == 0.0


def test_training_examples_labels_split_and_idempotent_write(spark, fcfg):
    cat, ev = catalog_df(spark, CATALOG_ROWS), events_df(spark, EVENT_ROWS)
    te = build_training_examples(cat, ev, fcfg)
    assert te.columns == ID_COLUMNS + feature_columns([7, 28]) + LABEL_COLUMNS
    label = Row("track_id", "cutoff", "split", "future_plays", "popularity", "is_hit", "cold_start")
    assertDataFrameEqual(te.select(*label), [label("A", T, "test", 4, 50.0, 1, False),
                                             label("B", T, "test", 1, 0.0, 0, True),
                                             label("C", T, "test", 5, 100.0, 1, True)], rtol=0, atol=0)
    # the table holds exactly the built rows, and writing them again leaves it so (no duplicates)
    for _ in range(2):
        write_training_examples(build_training_examples(cat, ev, fcfg), fcfg)
        assertDataFrameEqual(spark.read.format("delta").load(fcfg.table("training_examples")), te, rtol=0, atol=0)


def test_labels_percentile_and_hit_flag_on_a_cohort(spark, tmp_path):
    cfg = make_config(tmp_path, "features.cutoffs=[2025-03-01]", "features.horizon_days=7", "features.hit_share=0.2",
                      "features.cold_start_days=0")
    plays = [0, 0, 1, 3, 5, 8, 8, 13, 21, 34, 55]
    cat = catalog_df(spark, [(f"t{i:02d}", f"a{i}", "pop", "2025-01-01", 1000, False, 0.1)
                             for i in range(len(plays))])
    ev = events_df(spark, [("u", f"t{i:02d}", "play", "2025-03-02T00:00:00", 1)
                           for i, n in enumerate(plays) for _ in range(n)])
    got = build_training_examples(cat, ev, cfg).select("track_id", "future_plays", "popularity", "is_hit")
    # percent_rank = (rank - 1) / (n - 1) with n = 11; ties share the lowest rank; hit when >= 0.8
    expected_pr = [0, 0, 2, 3, 4, 5, 5, 7, 8, 9, 10]
    assertDataFrameEqual(got, [Row(track_id=f"t{i:02d}", future_plays=plays[i], popularity=100.0 * expected_pr[i] / 10,
                                   is_hit=int(expected_pr[i] >= 8)) for i in range(len(plays))], rtol=0, atol=0)


def test_time_split_and_artist_disjoint_split(spark, tmp_path):
    cfg = make_config(tmp_path, "features.validation_cutoffs=[2025-07-01]", "features.test_cutoffs=[2025-09-01]")
    df = spark.createDataFrame([(dt.date(2025, m, 1), f"art{a}", None) for m in (3, 5, 7, 9) for a in range(400)],
                               "cutoff date, artist_id string, artist_name string")
    by_cut = {(r["cutoff"], r["split"]) for r in add_split(df, cfg.features).select("cutoff", "split").collect()}
    assert by_cut == {(dt.date(2025, 3, 1), "train"), (dt.date(2025, 5, 1), "train"),
                      (dt.date(2025, 7, 1), "validation"), (dt.date(2025, 9, 1), "test")}
    cfg = dataclasses.replace(cfg, features=dataclasses.replace(cfg.features, artist_disjoint=True))
    out = add_split(df, cfg.features)
    per_artist = out.groupBy("artist_id").agg(F.countDistinct("split").alias("n"), F.first("split").alias("s"))
    assert per_artist.where("n <> 1").count() == 0          # each artist in exactly one split
    shares = {r["s"]: r["count"] for r in per_artist.groupBy("s").count().collect()}
    assert set(shares) == {"train", "validation", "test"}
    assert 0.6 < shares["train"] / 400 < 0.8 and 0.08 < shares["test"] / 400 < 0.22
    again = {r["artist_id"]: r["split"] for r in add_split(df, cfg.features).collect()}
    assert again == {r["artist_id"]: r["split"] for r in out.collect()}   # stable


def test_time_split_refuses_label_windows_that_reach_into_a_later_split(tmp_path):
    check_time_split(make_config(tmp_path).features)             # the shipped cutoffs are honest
    leaky_train = make_config(tmp_path, "features.cutoffs=[2025-03-01, 2025-05-15, 2025-07-01, 2025-09-01]")
    with pytest.raises(ConfigError, match=r"the train cutoff 2025-05-15 labels plays up to 2025-07-10 "
                                          r"\(horizon_days=56\), past the next split's cutoff 2025-07-01.*"
                                          r"move it to 2025-05-06 or earlier"):
        check_time_split(leaky_train.features)
    leaky_val = make_config(tmp_path, "features.cutoffs=[2025-03-01, 2025-07-15, 2025-09-01]",
                            "features.validation_cutoffs=[2025-07-15]")
    with pytest.raises(ConfigError, match="the validation cutoff 2025-07-15 labels plays up to 2025-09-09"):
        check_time_split(leaky_val.features)
    short = make_config(tmp_path, "features.cutoffs=[2025-05-15, 2025-07-01, 2025-09-01]", "features.horizon_days=40")
    check_time_split(short.features)                               # 2025-05-15 + 40 days = 2025-06-24
