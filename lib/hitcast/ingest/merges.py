"""Tracks that merge: when a run links two ids that were separate tracks, the rows of the id that is canonical
no more move to the canonical one, one MERGE per table, nothing lost:

- ``engagement_events``: ``track_id`` becomes the canonical id (``source_track_id`` keeps the source's);
- ``catalog``: a row derived from the logs moves to the canonical id (kept there only when the canonical id has
  no row, or has a derived row first seen later); a catalog file's row never moves (two catalog ids never
  merge, :mod:`hitcast.ingest.identity`);
- ``predictions``: a stored score moves to the canonical id when that id has no score of the same model
  version; otherwise the canonical id's score stands and the old one is dropped (the next scoring run scores
  the merged track).

Aggregates computed from the events are not rewritten here: ``engagement_daily`` sees the updated events in
their change feed and is rebuilt by its next update (:mod:`hitcast.features.dailytable`); features follow it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.ingest.derive_catalog import DERIVED_UPDATE_WHEN
from hitcast.tables import last_operation_metrics, table_exists, table_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Moved:
    """Rows moved to a canonical id by one run: events, catalog rows, stored scores."""

    events: int = 0
    catalog_rows: int = 0
    scores: int = 0


def _merge_count(spark: SparkSession, location: str, before: int | None, *metrics: str) -> int:
    if table_version(spark, location) == before:
        return 0
    m = last_operation_metrics(spark, location)
    return sum(int(m.get(k, 0)) for k in metrics)


def move_events(spark: SparkSession, location: str, moves: DataFrame) -> int:
    """``track_id = new`` on every event of an ``old`` id (``moves``: ``DataFrame[old, new]``); rows updated."""
    from delta.tables import DeltaTable

    if not table_exists(spark, location):
        return 0
    before = table_version(spark, location)
    (DeltaTable.forPath(spark, location).alias("t").merge(F.broadcast(moves).alias("s"), "t.track_id = s.old")
     .whenMatchedUpdate(set={"track_id": "s.new"}).execute())
    return _merge_count(spark, location, before, "numTargetRowsUpdated")


def _moved_rows(table: DataFrame, moves: DataFrame, keys: list[str], order: list[str]) -> DataFrame:
    """For every row of an ``old`` id: a ``delete`` of it, and the ``upsert`` of its copy under ``new`` (of
    several copies with the same ``keys``, the first by ``order``)."""
    old = table.join(F.broadcast(moves), table.track_id == moves.old).drop("old")
    cols = list(table.columns)
    delete = old.select(*cols, F.lit("delete").alias("_op"))
    w = Window.partitionBy(*keys).orderBy(*order)
    upsert = (old.withColumn("track_id", F.col("new")).withColumn("_rn", F.row_number().over(w))
              .where("_rn = 1").select(*cols, F.lit("upsert").alias("_op")))
    return delete.unionByName(upsert)


def move_catalog(spark: SparkSession, location: str, moves: DataFrame) -> int:
    """Derived catalog rows of ``old`` ids -> ``new`` ids, one MERGE; returns the rows moved (deleted)."""
    from delta.tables import DeltaTable

    if not table_exists(spark, location):
        return 0
    table = spark.read.format("delta").load(location)
    derived = table.where("coalesce(derived_from_logs, false)")
    # The canonical id gets the earliest-seen derived row: of several old ids moving to one, the earliest.
    source = _moved_rows(derived, moves, ["track_id"], ["release_date", "source_file", "title"])
    if source.isEmpty():
        return 0
    before = table_version(spark, location)
    cols = {c: f"s.`{c}`" for c in table.columns}
    (DeltaTable.forPath(spark, location).alias("t").merge(source.alias("s"), "t.track_id = s.track_id")
     .whenMatchedDelete(condition="s._op = 'delete'")
     .whenMatchedUpdate(condition=f"s._op = 'upsert' AND ({DERIVED_UPDATE_WHEN})", set=cols)
     .whenNotMatchedInsert(condition="s._op = 'upsert'", values=cols).execute())
    return _merge_count(spark, location, before, "numTargetRowsDeleted")


def move_scores(spark: SparkSession, location: str, moves: DataFrame) -> int:
    """Stored scores of ``old`` ids -> ``new`` ids (when the new id has none of that model), one MERGE;
    returns the scores moved or dropped."""
    from delta.tables import DeltaTable

    if not table_exists(spark, location):
        return 0
    table = spark.read.format("delta").load(location)
    source = _moved_rows(table, moves, ["track_id", "model_version"], [F.col("scored_at").desc(), "input_hash"])
    if source.isEmpty():
        return 0
    before = table_version(spark, location)
    cols = {c: f"s.`{c}`" for c in table.columns}
    (DeltaTable.forPath(spark, location).alias("t")
     .merge(source.alias("s"), "t.track_id = s.track_id AND t.model_version = s.model_version")
     .whenMatchedDelete(condition="s._op = 'delete'")
     .whenNotMatchedInsert(condition="s._op = 'upsert'", values=cols).execute())
    return _merge_count(spark, location, before, "numTargetRowsDeleted")


def move_tracks(spark: SparkSession, cfg: Config, merged: dict[str, str]) -> Moved:
    """Move the rows of every merged id (``{old: new}``) in events, catalog and predictions."""
    if not merged:
        return Moved()
    moves = spark.createDataFrame(sorted(merged.items()), "old string, new string")
    out = Moved(events=move_events(spark, cfg.table("engagement_events"), moves),
                catalog_rows=move_catalog(spark, cfg.table("catalog"), moves),
                scores=move_scores(spark, cfg.table("predictions"), moves))
    log.info("%d tracks merged into another: moved %d events, %d catalog rows, %d scores", len(merged), out.events,
             out.catalog_rows, out.scores)
    return out
