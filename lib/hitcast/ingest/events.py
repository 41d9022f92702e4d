"""Engagement events: parse, validate, de-duplicate on ``event_id``, flag unknown tracks."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.ingest import reasons as R
from hitcast.ingest.exports import EVENT_SOURCE, map_profile, read_export_files
from hitcast.ingest.profiles import ID_FIELDS, EventProfile
from hitcast.ingest.readers import apply_mapping, as_long, blank, list_files, read_json_lines, read_parquet
from hitcast.schemas import ENGAGEMENT_EVENTS, EVENT_TYPES

log = logging.getLogger(__name__)

#: Columns a profile's raw frame carries past classification (for the catalog derived from the logs).
NAME_COLUMNS = ["artist_name", "title", *ID_FIELDS]


def read_event_files(spark: SparkSession, cfg: Config, profile: EventProfile | None = None,
                     keep: Callable[[Sequence[Path]], list[Path]] | None = None
                     ) -> tuple[DataFrame | None, list[Path]]:
    """All event files, mapped to contract names.

    Without a profile: the events contract (JSON lines read together; Parquet one by one; column names
    through ``ingest.events_column_mapping``). With one: the export files it selects, through
    :func:`hitcast.ingest.exports.map_profile` (which adds ``artist_name``, ``title``, ``not_a_track``,
    ``pre_reason`` and ``pre_detail``). ``keep`` (e.g. :func:`hitcast.ingest.manifest.unseen`) selects the
    files to read.

    Returns
    -------
    (DataFrame or None, list of Path)
        The raw frame (``None`` when there is no event file to read) and the files read.
    """
    ing = cfg.ingest
    location = cfg.path(ing.events_path)
    if profile is not None:
        raw, read = read_export_files(spark, location, profile, keep)
        root = location if location.is_dir() else location.parent
        while not root.is_dir() and root != root.parent:       # a glob: the folder above its first pattern
            root = root.parent
        return (None if raw is None else map_profile(raw, profile, root=root)), read
    files = list_files(location, ing.events_format)
    if keep is not None:
        chosen = set(keep([p for p, _ in files]))
        files = [(p, f) for p, f in files if p in chosen]
    inverse = {dst: src for src, dst in ing.events_column_mapping.items()}
    wanted = sorted({inverse.get(c, c) for c in EVENT_SOURCE})
    frames = []
    json_files = [p for p, f in files if f == "json"]
    if json_files:
        frames.append(read_json_lines(spark, json_files, wanted))
    frames.extend(read_parquet(spark, p) for p, f in files if f == "parquet")
    if any(f == "csv" for _, f in files):
        log.warning("events: CSV is not part of the events contract (an event profile reads CSV exports); "
                    "skipping %s", [p.name for p, f in files if f == "csv"])
    log.info("events: %d files under %s", len(files), location)
    if not frames:
        return None, []
    df = frames[0]
    for other in frames[1:]:
        df = df.unionByName(other, allowMissingColumns=True)
    df = apply_mapping(df, ing.events_column_mapping, {})
    for c in EVENT_SOURCE:
        if c not in df.columns:
            df = df.withColumn(c, F.lit(None).cast("string"))
    return df, [*json_files, *[p for p, f in files if f == "parquet"]]


def classify_events(df: DataFrame, now: Column, tolerance_hours: float) -> DataFrame:
    """Typed event columns plus ``reason`` (null for a good event), duplicates included.

    Parameters
    ----------
    df : DataFrame
        Raw frame from :func:`read_event_files`. With ``pre_reason`` / ``pre_detail`` (an event profile's
        own verdict, checked right after ``malformed``) and ``artist_name`` / ``title`` when it has them.
    now : Column
        Timestamp of "now"; an event later than ``now + tolerance_hours`` is ``future_event_time``.

    Returns
    -------
    DataFrame[event_id, user_id, track_id, event_type string, event_time timestamp, ms_played long,
    source_file string, row_pos long, raw_record string (null for good rows), reason string, detail string
    (+ artist_name, title when ``df`` has them)]
    """
    t = F.expr("try_to_timestamp(trim(event_time))")
    ms = as_long("ms_played")
    limit = now + F.expr(f"make_dt_interval(0, 0, 0, {float(tolerance_hours) * 3600.0})")
    none = F.lit(None).cast("string")
    pre_reason = F.col("pre_reason") if "pre_reason" in df.columns else none
    pre_detail = F.col("pre_detail") if "pre_detail" in df.columns else none
    checks = [
        (F.col("malformed"), F.lit(R.MALFORMED_JSON), pre_detail),
        (pre_reason.isNotNull(), pre_reason, pre_detail),
        (blank(F.col("event_id")), F.lit(R.MISSING_EVENT_ID), none),
        (blank(F.col("track_id")), F.lit(R.MISSING_TRACK_ID), none),
        (~F.coalesce(F.trim("event_type").isin(*EVENT_TYPES), F.lit(False)), F.lit(R.UNKNOWN_EVENT_TYPE), none),
        (t.isNull(), F.lit(R.BAD_EVENT_TIME), none),
        (~blank(F.col("ms_played")) & ms.isNull(), F.lit(R.BAD_MS_PLAYED), none),
        (F.coalesce(ms < 0, F.lit(False)), F.lit(R.NEGATIVE_MS_PLAYED), none),
        (t > limit, F.lit(R.FUTURE_EVENT_TIME), none),
    ]
    reason, detail = none, none
    for cond, why, what in reversed(checks):
        reason = F.when(cond, why).otherwise(reason)
        detail = F.when(cond, what).otherwise(detail)
    names = [c for c in NAME_COLUMNS if c in df.columns]
    typed = df.select(F.trim("event_id").alias("event_id"), F.trim("user_id").alias("user_id"),
                      F.trim("track_id").alias("track_id"), F.trim("event_type").alias("event_type"),
                      t.alias("event_time"), ms.alias("ms_played"), "source_file", "row_pos", "raw_record",
                      reason.alias("reason"), detail.alias("detail"), *names)
    w = Window.partitionBy("event_id").orderBy(F.col("reason").isNotNull(), "source_file", "row_pos")
    rn = F.row_number().over(w)
    dup = F.col("reason").isNull() & (rn > 1)
    out = (typed.withColumn("detail", F.when(dup, F.lit(None)).otherwise(F.col("detail")))
           .withColumn("reason", F.when(dup, F.lit(R.DUPLICATE_EVENT)).otherwise(F.col("reason"))))
    return out.withColumn("raw_record", F.when(F.col("reason").isNotNull(), F.col("raw_record")))


def ensure_source_track_id(spark: SparkSession, location: str) -> None:
    """Add ``source_track_id`` to an ``engagement_events`` table written before it existed (NULL: as
    ``track_id``)."""
    from hitcast.tables import table_exists

    if table_exists(spark, location) and "source_track_id" not in spark.read.format("delta").load(location).columns:
        spark.sql(f"ALTER TABLE delta.`{location}` ADD COLUMNS (source_track_id STRING)")
        log.info("engagement_events %s: added the column source_track_id", location)


def event_rows(good: DataFrame, known_ids: DataFrame, now: Column) -> DataFrame:
    """Good events in the :data:`hitcast.schemas.ENGAGEMENT_EVENTS` layout.

    ``known_track`` is true when ``known_ids`` (``DataFrame[track_id]``, unique) holds the track.
    """
    known = known_ids.select("track_id", F.lit(True).alias("_known"))
    j = good.join(F.broadcast(known), "track_id", "left")
    cols = {"known_track": F.coalesce(F.col("_known"), F.lit(False)), "event_date": F.to_date("event_time"),
            "ingested_at": now}
    return j.select(*[(cols[f.name] if f.name in cols else F.col(f.name)).cast(f.dataType).alias(f.name)
                      for f in ENGAGEMENT_EVENTS.fields])
