"""Daily per-track engagement aggregates: the one summary of ``engagement_events`` every feature reads.

A cutoff T is 00:00 UTC of a date, so "events before T" is "days before T" and every engagement feature,
label and artist-history figure is a sum (or a minimum, or a sketch union) over whole days. One row per
``(track_id, event_date)`` (:data:`hitcast.schemas.ENGAGEMENT_DAILY`)::

    track_id string, event_date date,
    plays, skips, saves, playlist_adds, shares long   events of each type that day
    ms_played long                                     sum of ms_played of the plays (NULL counted as 0)
    first_event timestamp                              the day's earliest event
    listeners_sketch binary                            HyperLogLog sketch of the day's user_id values
                                                       (Spark's hll_sketch_agg, lgConfigK from config)
    events long                                        every event that day

Rows are additive: the aggregate of two disjoint sets of events of one track-day is :func:`combine` of
their rows, so new events update their own day's row and nothing else.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

#: The count columns, and the event type each counts.
COUNTS = {"plays": "play", "skips": "skip", "saves": "save", "playlist_adds": "playlist_add", "shares": "share"}
#: Columns summed when two rows of one track-day are combined.
ADDITIVE = [*COUNTS, "ms_played", "events"]
KEYS = ["track_id", "event_date"]


def daily_aggregates(events: DataFrame, lg_k: int) -> DataFrame:
    """Aggregate events to one row per (track, UTC day).

    Parameters
    ----------
    events : DataFrame[track_id, user_id, event_type, event_time timestamp, ms_played long, ...]
    lg_k : int
        ``lgConfigK`` of the listener sketches (4-21; relative error about 1.04 / sqrt(2 ** lg_k) once a
        sketch holds more than a few hundred listeners, exact below that).

    Returns
    -------
    DataFrame with the columns of :data:`hitcast.schemas.ENGAGEMENT_DAILY`.
    """
    etype = F.col("event_type")

    def n(cond: Column) -> Column:
        return F.count(F.when(cond, 1))

    return (events.where(F.col("track_id").isNotNull() & F.col("event_time").isNotNull())
            .groupBy("track_id", F.to_date("event_time").alias("event_date"))
            .agg(*[n(etype == kind).alias(name) for name, kind in COUNTS.items()],
                 F.sum(F.when(etype == "play", F.coalesce("ms_played", F.lit(0))).otherwise(0)).cast("long")
                 .alias("ms_played"),
                 F.min("event_time").alias("first_event"),
                 F.hll_sketch_agg(F.coalesce("user_id", F.lit("")), lg_k).alias("listeners_sketch"),
                 F.count(F.lit(1)).alias("events")))


def combine(old: str, new: str) -> dict[str, str]:
    """SQL expressions of one track-day's row from two rows of it (table aliases ``old`` and ``new``):
    counts added, the earlier first event, the sketches' union. For a MERGE's ``whenMatchedUpdate``."""
    out = {c: f"{old}.{c} + {new}.{c}" for c in ADDITIVE}
    out["first_event"] = f"least({old}.first_event, {new}.first_event)"
    out["listeners_sketch"] = f"hll_union({old}.listeners_sketch, {new}.listeners_sketch, true)"
    return out
