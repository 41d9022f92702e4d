"""A catalog from the logs (``ingest.derive_catalog: true``): rows for tracks the catalog lacks.

For every track of this run's good events that has an artist name (an event profile's ``artist_name``),
and that no catalog file provides, ingest writes a ``catalog`` row with ``derived_from_logs = true``:

- ``track_id``; ``artist_name`` and ``title`` as the track's earliest event spells them (ties: file name,
  then position); ``artist_id`` NULL (so artist features go by ``artist_name``);
- ``release_date`` = the date of the track's first event: "first seen" stands in for a release date;
- ``audio_path`` NULL: the spectrogram job gives such a track status ``no_audio`` and scoring scores it in
  ``no_audio`` mode (``cold_start`` while it has no event before ``as_of``);
- ``source_file`` = the events file of that first event.

Rules of the MERGE on ``track_id`` (re-running over the same files changes nothing):

- a derived row never replaces a catalog row from a catalog file;
- a derived row replaces an older derived row only when it was seen earlier (older logs arrived later);
- a catalog file's row always replaces a derived row (see :data:`hitcast.ingest.catalog.CATALOG_UPDATE_WHEN`).

Events without an artist name (the plain events contract has none) derive nothing: their tracks stay
``known_track = false``.
"""
from __future__ import annotations

import logging

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from hitcast.ingest.catalog import HASHED_COLUMNS
from hitcast.schemas import CATALOG
from hitcast.tables import MergeResult, merge_upsert, table_exists

log = logging.getLogger(__name__)

#: A derived row replaces a stored row only if that one is derived too and was first seen later.
DERIVED_UPDATE_WHEN = "coalesce(t.derived_from_logs, false) AND s.release_date < t.release_date"


def derived_catalog_rows(good: DataFrame, now: Column) -> DataFrame:
    """One :data:`hitcast.schemas.CATALOG` row per track of ``good`` that has a named event.

    Parameters
    ----------
    good : DataFrame[track_id, event_time timestamp, source_file, row_pos, artist_name, title, ...]
        Good (classified, de-duplicated) events.
    now : Column
        ``ingested_at``.
    """
    named = good.where(F.col("artist_name").isNotNull() & (F.trim("artist_name") != ""))
    w = Window.partitionBy("track_id").orderBy("event_time", "source_file", "row_pos")
    first = named.withColumn("_rn", F.row_number().over(w)).where(F.col("_rn") == 1)
    values = {"title": F.nullif(F.trim("title"), F.lit("")), "artist_name": F.trim("artist_name"),
              "release_date": F.to_date("event_time"), "derived_from_logs": F.lit(True),
              "ingested_at": now}
    cols = [(values[f.name] if f.name in values else F.col(f.name) if f.name in ("track_id", "source_file")
             else F.lit(None)).cast(f.dataType).alias(f.name) for f in CATALOG.fields if f.name != "record_hash"]
    rows = first.select(*cols)
    hashed = rows.withColumn("record_hash", F.sha2(F.to_json(F.struct(*HASHED_COLUMNS)), 256))
    return hashed.select(*[f.name for f in CATALOG.fields])


def merge_derived(spark: SparkSession, rows: DataFrame, location: str) -> MergeResult:
    """MERGE derived rows into the catalog at ``location`` (rules in the module docstring)."""
    result = merge_upsert(spark, rows, location=location, keys=["track_id"], update=DERIVED_UPDATE_WHEN)
    log.info("catalog from the logs: %d tracks added, %d first seen earlier", result.inserted, result.updated)
    return result


def ensure_derived_column(spark: SparkSession, location: str) -> None:
    """Add ``derived_from_logs`` to a ``catalog`` table written before it existed (NULL: from a file)."""
    if table_exists(spark, location) and "derived_from_logs" not in spark.read.format("delta").load(location).columns:
        spark.sql(f"ALTER TABLE delta.`{location}` ADD COLUMNS (derived_from_logs BOOLEAN)")
        log.info("catalog %s: added the column derived_from_logs", location)
