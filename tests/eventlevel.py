"""The event-level reference: engagement features computed straight from ``engagement_events``, as hitcast
did before the daily aggregates (``engagement_daily``). Tests check that the features the library computes
from the daily aggregates equal these (listeners within the sketches' error).

Per-track engagement aggregates from events strictly before each cutoff T.

All cutoffs are computed in one pass: events are joined to a small ``cutoffs`` frame
(``DataFrame[cutoff date, t timestamp]``, see :func:`cutoff_frame`) and aggregated per
``(track_id, cutoff)``. For each window ``w`` in ``features.windows_days`` (``T - w days <= event_time < T``):

=========================  ===================================================================
column                     definition (NULL for a cold-start track, i.e. no event before T)
=========================  ===================================================================
``plays_{w}d``             number of ``play`` events
``listeners_{w}d``         distinct ``user_id`` with any event
``skip_rate_{w}d``         skips / (plays + skips); NULL when both are 0
``save_rate_{w}d``         saves / plays; NULL when plays = 0
``playlist_adds_{w}d``     number of ``playlist_add`` events
``shares_{w}d``            number of ``share`` events
``completion_{w}d``        sum(ms_played of plays) / (plays * duration_ms); NULL when plays = 0 or
                           the duration is unknown
``trend_7d``               ln(1 + plays in [T-7d, T)) - ln(1 + plays in [T-14d, T-7d))
``plays_total``            plays before T
``days_since_first_event`` whole days from the first event's date to T
=========================  ===================================================================
"""
from __future__ import annotations

import datetime as dt
from typing import Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F


def cutoff_frame(spark: SparkSession, cutoffs: Sequence[dt.date]) -> DataFrame:
    """``DataFrame[cutoff date, t timestamp]``: each cutoff and its instant (00:00 UTC)."""
    rows = [(c,) for c in sorted(set(cutoffs))]
    return (spark.createDataFrame(rows, "cutoff date")
            .withColumn("t", F.col("cutoff").cast("timestamp")))


def _days_before(days: int) -> Column:
    return F.col("t") - F.make_dt_interval(F.lit(days))


def events_before(events: DataFrame, cutoffs: DataFrame, longest_days: int | None = None) -> DataFrame:
    """Events paired with every cutoff they precede (``event_time < t``), optionally only the last
    ``longest_days`` days. Columns: track_id, user_id, event_type, event_time, ms_played, cutoff, t."""
    ev = events.select("track_id", "user_id", "event_type", "event_time", "ms_played")
    cond = ev["event_time"] < cutoffs["t"]
    if longest_days is not None:
        cond = cond & (ev["event_time"] >= cutoffs["t"] - F.make_dt_interval(F.lit(longest_days)))
    return ev.join(F.broadcast(cutoffs), cond, "inner")


def track_aggregates(events: DataFrame, cutoffs: DataFrame, windows: list[int]) -> DataFrame:
    """Raw counts per (track, cutoff), no rates yet.

    Returns
    -------
    DataFrame[track_id, cutoff, first_event timestamp, plays_total long, and per window w:
    plays_w, skips_w, saves_w, adds_w, shares_w, ms_w (long), plus plays_last7, plays_prev7 long]
    """
    ev = events_before(events, cutoffs)
    play, etype = F.col("event_type") == "play", F.col("event_type")

    def n(cond: Column) -> Column:
        return F.sum(F.when(cond, 1).otherwise(0))

    aggs = [F.min("event_time").alias("first_event"), n(play).alias("plays_total")]
    for w in windows:
        inw = F.col("event_time") >= _days_before(w)
        aggs += [n(inw & play).alias(f"plays_{w}"), n(inw & (etype == "skip")).alias(f"skips_{w}"),
                 n(inw & (etype == "save")).alias(f"saves_{w}"), n(inw & (etype == "playlist_add")).alias(f"adds_{w}"),
                 n(inw & (etype == "share")).alias(f"shares_{w}"),
                 F.sum(F.when(inw & play, F.coalesce("ms_played", F.lit(0))).otherwise(0)).alias(f"ms_{w}")]
    last7 = F.col("event_time") >= _days_before(7)
    prev7 = (F.col("event_time") >= _days_before(14)) & ~last7
    aggs += [n(last7 & play).alias("plays_last7"), n(prev7 & play).alias("plays_prev7")]
    return ev.groupBy("track_id", "cutoff").agg(*aggs)


def listener_counts(events: DataFrame, cutoffs: DataFrame, windows: list[int]) -> DataFrame:
    """Distinct listeners per (track, cutoff) and window: ``DataFrame[track_id, cutoff, listeners_w ...]``."""
    ev = events_before(events, cutoffs, max(windows))
    last = ev.groupBy("track_id", "cutoff", "t", "user_id").agg(F.max("event_time").alias("last"))
    return last.groupBy("track_id", "cutoff").agg(*[
        F.count(F.when(F.col("last") >= _days_before(w), 1)).alias(f"listeners_{w}") for w in windows])


def engagement_columns(windows: list[int]) -> list[str]:
    """Names of the engagement feature columns, in output order."""
    cols = []
    for w in windows:
        cols += [f"plays_{w}d", f"listeners_{w}d", f"skip_rate_{w}d", f"save_rate_{w}d", f"playlist_adds_{w}d",
                 f"shares_{w}d", f"completion_{w}d"]
    return cols + ["trend_7d", "plays_total", "days_since_first_event"]


def _ratio(num: Column, den: Column) -> Column:
    return F.when(den > 0, num.cast("double") / den.cast("double"))


def engagement_features(tracks: DataFrame, aggs: DataFrame, *, listeners: DataFrame, windows: list[int],
                        max_age_days: int) -> DataFrame:
    """Join the raw aggregates onto ``tracks`` and turn them into features.

    Parameters
    ----------
    tracks : DataFrame[track_id, cutoff, duration_ms, ...]
        One row per (track, cutoff), kept whole.

    Returns
    -------
    ``tracks`` + ``cold_start`` boolean + :func:`engagement_columns` (double, NULL when cold start).
    ``days_since_first_event`` is capped at ``max_age_days``, so a long-idle track's inputs stop changing.
    """
    j = tracks.join(aggs, ["track_id", "cutoff"], "left").join(listeners, ["track_id", "cutoff"], "left")
    cold = F.col("first_event").isNull()
    feats: dict[str, Column] = {}
    dur = F.col("duration_ms")
    for w in windows:
        plays, skips = F.col(f"plays_{w}"), F.col(f"skips_{w}")
        feats[f"plays_{w}d"] = plays
        feats[f"listeners_{w}d"] = F.coalesce(F.col(f"listeners_{w}"), F.lit(0))
        feats[f"skip_rate_{w}d"] = _ratio(skips, plays + skips)
        feats[f"save_rate_{w}d"] = _ratio(F.col(f"saves_{w}"), plays)
        feats[f"playlist_adds_{w}d"] = F.col(f"adds_{w}")
        feats[f"shares_{w}d"] = F.col(f"shares_{w}")
        feats[f"completion_{w}d"] = F.when((plays > 0) & (dur > 0), F.col(f"ms_{w}") / (plays * dur))
    feats["trend_7d"] = F.log1p(F.col("plays_last7")) - F.log1p(F.col("plays_prev7"))
    feats["plays_total"] = F.col("plays_total")
    feats["days_since_first_event"] = F.least(F.datediff(F.col("cutoff"), F.to_date("first_event")),
                                              F.lit(max_age_days))
    return j.select(*tracks.columns, cold.alias("cold_start"),
                    *[F.when(~cold, c.cast("double")).alias(name) for name, c in feats.items()])


def future_plays(events: DataFrame, cutoffs: DataFrame, horizon_days: int) -> DataFrame:
    """``DataFrame[track_id, cutoff, future_plays long]``: plays in ``[t, t + horizon_days)``."""
    ev = events.where(F.col("event_type") == "play").select("track_id", "event_time")
    cond = (ev["event_time"] >= cutoffs["t"]) & (ev["event_time"] < cutoffs["t"] + F.make_dt_interval(
        F.lit(horizon_days)))
    return (ev.join(F.broadcast(cutoffs), cond, "inner")
            .groupBy("track_id", "cutoff").agg(F.count(F.lit(1)).alias("future_plays")))


def features_for_cutoffs(catalog: DataFrame, events: DataFrame, *, cutoffs, cfg) -> DataFrame:
    """``hitcast.features.examples.features_for_cutoffs`` with the engagement part computed from events."""
    from hitcast.features.artist import artist_features
    from hitcast.features.examples import METADATA_COLUMNS, SCORING_ID_COLUMNS, feature_columns
    from hitcast.schemas import AUDIO_FEATURES

    windows = sorted(cfg.features.windows_days)
    cuts = cutoff_frame(catalog.sparkSession, cutoffs)
    tracks = (catalog.select("track_id", "artist_id", "artist_name", "genre", "release_date", "duration_ms",
                             "explicit", *AUDIO_FEATURES).crossJoin(F.broadcast(cuts.select("cutoff"))))
    aggs = track_aggregates(events, cuts, windows)
    eng = engagement_features(tracks, aggs, listeners=listener_counts(events, cuts, windows), windows=windows,
                              max_age_days=cfg.features.max_age_days)
    meta = {"duration_s": F.col("duration_ms") / 1000.0, "explicit": F.col("explicit").cast("double"),
            **{c: F.col(c) for c in AUDIO_FEATURES},
            "days_since_release": F.least(F.datediff(F.col("cutoff"), F.col("release_date")),
                                          F.lit(cfg.features.max_age_days))}
    assert set(meta) == set(METADATA_COLUMNS)
    out = eng.join(artist_features(tracks, aggs, windows), ["track_id", "cutoff"], "left")
    return out.select(*SCORING_ID_COLUMNS, *[(meta[c] if c in meta else F.col(c)).cast("double").alias(c)
                                             for c in feature_columns(windows)])
