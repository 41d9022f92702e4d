"""Overlapping exports of one listener: the same listen in two files is one event.

A listener who downloads both Spotify exports has the same days in both: the account data to the minute
(``endTime``), the extended history to the second (``ts``), with different track ids (a key, a URI) that
:mod:`hitcast.ingest.identity` resolves to one. Two good events are the same listen when they have

- the same ``user_id``, the same (canonical) ``track_id`` and the same, known ``ms_played``;
- end times less than :data:`WINDOW_S` seconds apart (the coarser export's precision: a minute);
- different source files (within one file, two such events are two listens).

Only events read through an event profile (exports without event ids) are compared: events of the events
contract carry their own ``event_id`` and are never taken for one another.

The event kept is the one whose source gave an exact id (not a ``key:``), then the first by file and position;
an event already stored is always kept. The others are quarantined as ``overlapping_export``.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

WINDOW_S = 60
KEYS = ["user_id", "track_id", "ms_played"]


def _close(a: str, b: str) -> Column:
    return F.abs(F.unix_micros(F.col(f"{a}.event_time")) - F.unix_micros(F.col(f"{b}.event_time"))) < WINDOW_S * 10**6


def _rank(alias: str) -> Column:
    """Sort key of an event of this run: exact source id first, then file and position."""
    return F.struct(F.col(f"{alias}.source_track_id").startswith("key:").alias("k"),
                    F.col(f"{alias}.source_file").alias("f"), F.col(f"{alias}.row_pos").alias("p"))


def overlapping(good: DataFrame, stored: DataFrame | None) -> DataFrame:
    """The events of ``good`` that repeat a listen kept elsewhere (rules in the module docstring).

    Parameters
    ----------
    good : DataFrame[event_id, user_id, track_id (canonical), source_track_id, event_time, ms_played,
        source_file, row_pos, ...]
        This run's good events, unique on ``event_id``.
    stored : DataFrame[event_id, user_id, track_id, event_time, ms_played, source_file] or None
        The events already in ``engagement_events``.

    Returns
    -------
    DataFrame[event_id, source_file, row_pos, kept_id, kept_file]
        One row per event to drop, with an event it repeats.
    """
    cols = ["event_id", *KEYS, "event_time", "source_file", "row_pos", "source_track_id"]
    a = good.where(F.col("ms_played").isNotNull()).select(*cols).alias("a")
    b = good.where(F.col("ms_played").isNotNull()).select(*cols).alias("b")
    same = [F.col(f"a.{k}") == F.col(f"b.{k}") for k in KEYS]
    cond = same[0] & same[1] & same[2] & (F.col("a.source_file") != F.col("b.source_file")) & _close("a", "b")
    in_run = (a.join(b, cond & (_rank("b") < _rank("a")))
              .select("a.event_id", "a.source_file", "a.row_pos", F.col("b.event_id").alias("kept_id"),
                      F.col("b.source_file").alias("kept_file")))
    if stored is None:
        return in_run.dropDuplicates(["event_id"])
    s = stored.where(F.col("ms_played").isNotNull()).select("event_id", *KEYS, "event_time", "source_file").alias("s")
    same_s = [F.col(f"a.{k}") == F.col(f"s.{k}") for k in KEYS]
    cond_s = (same_s[0] & same_s[1] & same_s[2] & (F.col("a.source_file") != F.col("s.source_file"))
              & (F.col("a.event_id") != F.col("s.event_id")) & _close("a", "s"))
    vs_stored = (a.join(s, cond_s).select("a.event_id", "a.source_file", "a.row_pos",
                                          F.col("s.event_id").alias("kept_id"), F.col("s.source_file").alias("kept_file")))
    return vs_stored.unionByName(in_run).dropDuplicates(["event_id"])
