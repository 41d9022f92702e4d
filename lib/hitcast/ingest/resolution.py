"""The identity step of an ingest run (``ingest.track_identity``): resolve this run's track ids, move the rows of
tracks that merge, give each new event its canonical ``track_id`` and drop the listens an overlapping export
repeats. Rules: :mod:`hitcast.ingest.identity`, :mod:`hitcast.ingest.merges`, :mod:`hitcast.ingest.overlap`."""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.ingest import reasons as R
from hitcast.ingest.aliases import canonical_ids, catalog_sightings, event_sightings, resolve_run, write_aliases
from hitcast.ingest.merges import move_tracks
from hitcast.ingest.overlap import overlapping
from hitcast.ingest.summary import IngestSummary
from hitcast.tables import table_exists

log = logging.getLogger(__name__)


@dataclass
class IdentityState:
    """What the catalog step hands the identity step: this run's catalog identities (or ``None``)."""

    catalog: DataFrame | None = None
    done: bool = False

    def add_catalog(self, winners: DataFrame, now: F.Column) -> None:
        """Keep the identities of this run's catalog rows (``resolved`` rows of outcome ``winner``)."""
        self.catalog = catalog_sightings(winners, now)


def resolve_ids(spark: SparkSession, cfg: Config, sightings: DataFrame, now: dt.datetime,
                summary: IngestSummary) -> DataFrame:
    """Resolve ``sightings``, move what merges, write ``track_aliases``; returns
    ``DataFrame[source_track_id, canonical_id]``."""
    resolution = resolve_run(spark, sightings, aliases_location=cfg.table("track_aliases"),
                             catalog_location=cfg.table("catalog"))
    moved = move_tracks(spark, cfg, resolution.merged)
    written = write_aliases(spark, cfg.table("track_aliases"), resolution, now)
    summary.ids_linked = sum(1 for t, c in resolution.canonical.items() if t != c and t not in resolution.merged)
    summary.tracks_merged = len(resolution.merged)
    summary.events_moved, summary.catalog_rows_moved, summary.scores_moved = (moved.events, moved.catalog_rows,
                                                                              moved.scores)
    summary.aliases_inserted, summary.aliases_updated = written.inserted, written.updated
    return canonical_ids(spark, resolution)


def resolve_catalog_only(spark: SparkSession, cfg: Config, state: IdentityState, now: dt.datetime,
                         summary: IngestSummary) -> None:
    """The identity step of a run that read catalog files but no event file."""
    if state.done or state.catalog is None:
        return
    resolve_ids(spark, cfg, state.catalog, now, summary)
    state.done = True


def resolve_events(spark: SparkSession, cfg: Config, good: DataFrame, raw: DataFrame, state: IdentityState,
                   now: dt.datetime, summary: IngestSummary, *, exports: bool) -> tuple[DataFrame, DataFrame]:
    """This run's good events with canonical ids, without the listens another export already gave (only
    for ``exports``, events read through event profiles: events with their own ``event_id``, the events
    contract, are never taken for one another).

    Parameters
    ----------
    good : DataFrame[event_id, user_id, track_id, event_time, ms_played, source_file, row_pos, ...]
        Good events (``track_id`` as the source gave it).
    raw : DataFrame[source_file, row_pos, raw_record, ...]
        The raw records (for the quarantine rows of dropped listens).

    Returns
    -------
    (DataFrame, DataFrame)
        ``good`` with ``track_id`` canonical and ``source_track_id``; quarantine rows
        (``source_file, raw_record, reason, detail``) of the ``overlapping_export`` listens.
    """
    sightings = event_sightings(good)
    if state.catalog is not None:
        sightings = sightings.unionByName(state.catalog)
    canon = resolve_ids(spark, cfg, sightings, now, summary)
    state.done = True
    canon = canon.withColumnRenamed("source_track_id", "_sid")
    mapped = (good.withColumn("source_track_id", F.col("track_id"))
              .join(F.broadcast(canon), F.col("track_id") == F.col("_sid"), "left")
              .withColumn("track_id", F.coalesce("canonical_id", "track_id")).drop("canonical_id", "_sid")
              .persist(StorageLevel.DISK_ONLY))
    loc = cfg.table("engagement_events")
    if not exports:
        return mapped, spark.createDataFrame([], "source_file string, raw_record string, reason string, detail string")
    stored = spark.read.format("delta").load(loc) if table_exists(spark, loc) else None
    drops = overlapping(mapped, stored).persist(StorageLevel.DISK_ONLY)
    summary.overlapping_events = drops.count()
    bad = (raw.join(drops.select("source_file", "row_pos", "kept_id", "kept_file"), ["source_file", "row_pos"])
           .select("source_file", "raw_record", F.lit(R.OVERLAPPING_EXPORT).alias("reason"),
                   F.concat(F.lit("same listen as event "), F.col("kept_id"), F.lit(" of "), F.col("kept_file"))
                   .alias("detail")))
    return mapped.join(drops.select("event_id"), "event_id", "left_anti"), bad
