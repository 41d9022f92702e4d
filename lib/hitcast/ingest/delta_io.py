"""MERGE helpers that report what they changed (Delta operation metrics)."""
from __future__ import annotations

import logging
from typing import Sequence

from pyspark.sql import DataFrame, SparkSession

from hitcast.tables import table_exists, table_version

log = logging.getLogger(__name__)


def _last_metrics(spark: SparkSession, location: str) -> dict[str, int]:
    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, location).history(1).select("operationMetrics").first()
    return {k: int(v) for k, v in (row["operationMetrics"] or {}).items() if str(v).isdigit()}


def merge(spark: SparkSession, df: DataFrame, location: str, keys: Sequence[str], update_when: str | None,
          partition_by: Sequence[str] = ()) -> tuple[int, int]:
    """Insert new keys and (if ``update_when`` is not None) update matched rows meeting it.

    ``update_when = None`` makes the MERGE insert-only (a re-run changes nothing). The table is
    created from ``df`` when absent. ``df`` must be unique on ``keys``.

    Returns
    -------
    (inserted, updated) : tuple of int
    """
    from delta.tables import DeltaTable

    if not table_exists(spark, location):
        writer = df.write.format("delta").mode("overwrite")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.save(location)
        m = _last_metrics(spark, location)
        log.info("created Delta table %s", location)
        return m.get("numOutputRows", 0), 0
    cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    before = table_version(spark, location)
    builder = DeltaTable.forPath(spark, location).alias("t").merge(df.alias("s"), cond)
    if update_when is not None:
        builder = builder.whenMatchedUpdateAll(condition=update_when)
    builder.whenNotMatchedInsertAll().execute()
    if table_version(spark, location) == before:   # a MERGE that changes nothing commits nothing
        return 0, 0
    m = _last_metrics(spark, location)
    return m.get("numTargetRowsInserted", 0), m.get("numTargetRowsUpdated", 0)


def flag_known_tracks(spark: SparkSession, events_location: str, catalog_location: str) -> int:
    """Set ``known_track = true`` on events whose track the catalog now holds; returns rows updated."""
    from delta.tables import DeltaTable

    if not (table_exists(spark, events_location) and table_exists(spark, catalog_location)):
        return 0
    events = DeltaTable.forPath(spark, events_location)
    unknown = events.toDF().where("NOT known_track").select("track_id").distinct()
    ids = spark.read.format("delta").load(catalog_location).select("track_id").join(unknown, "track_id")
    if ids.isEmpty():
        return 0
    before = table_version(spark, events_location)
    (events.alias("t").merge(ids.alias("s"), "t.track_id = s.track_id AND NOT t.known_track")
     .whenMatchedUpdate(set={"known_track": "true"}).execute())
    if table_version(spark, events_location) == before:
        return 0
    return _last_metrics(spark, events_location).get("numTargetRowsUpdated", 0)
