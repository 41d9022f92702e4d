"""Keep the Delta table ``engagement_daily`` up to date with ``engagement_events``, without recomputing it.

``engagement_events`` has Delta's change data feed on. Each update of ``engagement_daily`` reads the events
inserted since the events version it last took in, aggregates them by track and day
(:func:`hitcast.features.daily.daily_aggregates`) and MERGEs them in: a day that already has a row gets the
two rows combined (:func:`hitcast.features.daily.combine`), a new day is inserted. Only the days the new
events fall on change, late events included; a re-run with no new events commits nothing.

The events version an update took in is recorded in the ``userMetadata`` of its own commit
(``{"hitcast_daily": {"events_version": N, "lg_k": K}}``), so the record and the rows change together: a run
that dies before the MERGE commits leaves the old record and the next run takes the same events in again.

The table is rebuilt from a snapshot of ``engagement_events`` (one aggregation of every event) when there is
no record yet, when the events' change feed cannot serve the versions since it (vacuumed, or turned on
later), when ``features.listeners_lg_k`` changed, or when events were updated or deleted in a way that
changes what is aggregated (an update of ``known_track`` alone does not).
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.features.daily import KEYS, combine, daily_aggregates
from hitcast.tables import (commit_metadata, latest_commits, table_exists, table_version,
                            tagged_commits)

log = logging.getLogger(__name__)

TABLE = "engagement_daily"
#: Key of the record in the ``userMetadata`` of the table's commits.
STATE_KEY = "hitcast_daily"
#: Event columns that the aggregates depend on.
AGGREGATED = ["track_id", "user_id", "event_type", "event_time", "ms_played"]
CHANGE_FEED = "delta.enableChangeDataFeed"


@dataclass
class DailyUpdate:
    """What one :func:`update_engagement_daily` did."""

    mode: str = "none"                 # incremental | rebuilt | current | none (no events table)
    events_version: int | None = None  # the engagement_events version the table now reflects
    from_version: int | None = None    # the version it reflected before (None: rebuilt from nothing)
    events_added: int = 0              # events aggregated by this update
    days_inserted: int = 0             # (track, day) rows added
    days_updated: int = 0              # (track, day) rows that existing rows absorbed new events into
    reason: str = ""                   # why it was rebuilt
    seconds: float = 0.0

    def __str__(self) -> str:
        if self.mode == "none":
            return "engagement_daily: no engagement_events table yet"
        if self.mode == "current":
            return f"engagement_daily: current with engagement_events v{self.events_version} (nothing to add)"
        head = (f"rebuilt from engagement_events v{self.events_version} ({self.reason})" if self.mode == "rebuilt"
                else f"engagement_events v{self.from_version} -> v{self.events_version}")
        return (f"engagement_daily: {head}: {self.events_added} events into {self.days_inserted} new and "
                f"{self.days_updated} updated track-days in {self.seconds:.1f} s")


def ensure_change_feed(spark: SparkSession, location: str) -> None:
    """Turn on Delta's change data feed of the table at ``location`` if it is off (one commit, once)."""
    props = spark.sql(f"SHOW TBLPROPERTIES delta.`{location}`").collect()
    if any(r["key"] == CHANGE_FEED and str(r["value"]).lower() == "true" for r in props):
        return
    spark.sql(f"ALTER TABLE delta.`{location}` SET TBLPROPERTIES ({CHANGE_FEED} = true)")
    log.info("change data feed turned on for %s", location)


def read_state(spark: SparkSession, location: str) -> dict | None:
    """The record of the table's latest commit: ``{"events_version": int, "lg_k": int}``, or None."""
    if not table_exists(spark, location):
        return None
    state = commit_metadata(spark, location, STATE_KEY)
    return state if isinstance(state, dict) and "events_version" in state else None


def _changes(spark: SparkSession, events: str, start: int, end: int) -> DataFrame:
    return (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", start)
            .option("endingVersion", end).load(events).select(*AGGREGATED, "_change_type"))


def aggregated_rows_changed(changes: DataFrame) -> bool:
    """True when updates or deletes in ``changes`` (a change feed) alter an aggregated column of some event:
    every pre-image cancels its post-image otherwise."""
    other = changes.where(F.col("_change_type") != "insert")
    sign = F.when(F.col("_change_type") == "update_postimage", 1).otherwise(-1)
    net = other.groupBy(*AGGREGATED).agg(F.sum(sign).alias("n")).where(F.col("n") != 0)
    return not net.isEmpty()


def _merge(spark: SparkSession, location: str, rows: DataFrame, state: str) -> tuple[int, int]:
    from delta.tables import DeltaTable

    first = rows.agg(F.min("event_date")).first()[0]
    # the literal bound lets Delta skip every file of earlier days (their max event_date) without reading it
    cond = " AND ".join(f"t.{k} = s.{k}" for k in KEYS) + f" AND t.event_date >= DATE'{first.isoformat()}'"
    with tagged_commits(spark, state):
        (DeltaTable.forPath(spark, location).alias("t").merge(rows.alias("s"), cond)
         .whenMatchedUpdate(set=combine("t", "s")).whenNotMatchedInsertAll().execute())
    m = latest_commits(spark, location, 1)[0].get("operationMetrics", {})
    return int(m.get("numTargetRowsInserted", 0)), int(m.get("numTargetRowsUpdated", 0))


def rebuild(spark: SparkSession, cfg: Config, version: int) -> int:
    """Overwrite ``engagement_daily`` with the aggregates of ``engagement_events`` at ``version``; returns the
    number of events aggregated."""
    events = spark.read.format("delta").option("versionAsOf", version).load(cfg.table("engagement_events"))
    rows = daily_aggregates(events, cfg.features.listeners_lg_k).repartition("event_date")
    state = json.dumps({STATE_KEY: {"events_version": version, "lg_k": cfg.features.listeners_lg_k}})
    (rows.sortWithinPartitions(*KEYS).write.format("delta").mode("overwrite").option("overwriteSchema", "true")
     .option("userMetadata", state).save(cfg.table(TABLE)))
    stats = spark.read.format("delta").load(cfg.table(TABLE)).agg(F.sum("events").alias("n")).first()
    return int(stats["n"] or 0)


def update_engagement_daily(spark: SparkSession, cfg: Config) -> DailyUpdate:
    """Bring ``engagement_daily`` up to the latest ``engagement_events`` version (see the module docstring).

    Returns
    -------
    DailyUpdate
        The versions, the events taken in and the track-days inserted and updated.
    """
    t0 = time.perf_counter()
    events, location = cfg.table("engagement_events"), cfg.table(TABLE)
    if not table_exists(spark, events):
        return DailyUpdate()
    ensure_change_feed(spark, events)
    current = table_version(spark, events)
    state = read_state(spark, location)
    lg_k = cfg.features.listeners_lg_k
    out = DailyUpdate(events_version=current, from_version=state["events_version"] if state else None)
    reason = ("no earlier aggregates" if state is None
              else f"listeners_lg_k {state.get('lg_k')} -> {lg_k}" if state.get("lg_k") != lg_k else "")
    if not reason and state["events_version"] >= current:
        out.mode, out.seconds = "current", time.perf_counter() - t0
        return out
    if not reason:
        try:
            changes = _changes(spark, events, state["events_version"] + 1, current).persist(
                StorageLevel.MEMORY_AND_DISK)
            if aggregated_rows_changed(changes):
                reason = "events were updated or deleted"
        except AnalysisException as exc:        # versions no longer in the log, or the feed was off for them
            reason = f"the change feed cannot serve v{state['events_version'] + 1}..v{current}: {str(exc)[:200]}"
    if reason:
        log.info("engagement_daily: rebuilding from engagement_events v%s (%s)", current, reason)
        out.mode, out.reason = "rebuilt", reason
        out.events_added = rebuild(spark, cfg, current)
        out.days_inserted = spark.read.format("delta").load(location).count()
    else:
        inserts = changes.where(F.col("_change_type") == "insert")
        rows = daily_aggregates(inserts, lg_k).persist(StorageLevel.MEMORY_AND_DISK)
        out.events_added = int(rows.agg(F.sum("events")).first()[0] or 0)
        state_json = json.dumps({STATE_KEY: {"events_version": current, "lg_k": lg_k}})
        out.mode = "incremental"
        if out.events_added:
            out.days_inserted, out.days_updated = _merge(spark, location, rows, state_json)
        else:                                   # nothing aggregated changed: record the version, no rows
            spark.createDataFrame([], rows.schema).write.format("delta").mode("append").option(
                "userMetadata", state_json).save(location)
        rows.unpersist()
        changes.unpersist()
    out.seconds = time.perf_counter() - t0
    log.info("%s", out)
    return out
