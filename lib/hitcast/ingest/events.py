"""Engagement events: parse, validate, de-duplicate on ``event_id``, flag unknown tracks."""
from __future__ import annotations

import logging

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.ingest import reasons as R
from hitcast.ingest.readers import apply_mapping, list_files, read_json_lines, read_parquet
from hitcast.schemas import ENGAGEMENT_EVENTS, EVENT_TYPES

log = logging.getLogger(__name__)

EVENT_SOURCE = ["event_id", "user_id", "track_id", "event_type", "event_time", "ms_played"]


def read_event_files(spark: SparkSession, cfg: Config) -> tuple[DataFrame | None, int]:
    """All event files (JSON lines read together; Parquet one by one), mapped to contract names.

    Returns
    -------
    (DataFrame or None, int)
        The raw frame (``None`` when there is no event file) and the number of files read.
    """
    ing = cfg.ingest
    files = list_files(cfg.path(ing.events_path), ing.events_format)
    inverse = {dst: src for src, dst in ing.events_column_mapping.items()}
    wanted = sorted({inverse.get(c, c) for c in EVENT_SOURCE})
    frames = []
    json_files = [p for p, f in files if f == "json"]
    if json_files:
        frames.append(read_json_lines(spark, json_files, wanted))
    frames.extend(read_parquet(spark, p) for p, f in files if f == "parquet")
    if any(f == "csv" for _, f in files):
        log.warning("events: CSV is not part of the events contract; skipping %s",
                    [p.name for p, f in files if f == "csv"])
    log.info("events: %d files under %s", len(files), cfg.path(ing.events_path))
    if not frames:
        return None, 0
    df = frames[0]
    for other in frames[1:]:
        df = df.unionByName(other, allowMissingColumns=True)
    df = apply_mapping(df, ing.events_column_mapping, {})
    for c in EVENT_SOURCE:
        if c not in df.columns:
            df = df.withColumn(c, F.lit(None).cast("string"))
    return df, len(json_files) + sum(1 for _, f in files if f == "parquet")


def _blank(c: Column) -> Column:
    return c.isNull() | (F.trim(c) == "")


def classify_events(df: DataFrame, now: Column, tolerance_hours: float) -> DataFrame:
    """Typed event columns plus ``reason`` (null for a good event), duplicates included.

    Parameters
    ----------
    df : DataFrame
        Raw frame from :func:`read_event_files`.
    now : Column
        Timestamp of "now"; an event later than ``now + tolerance_hours`` is ``future_event_time``.

    Returns
    -------
    DataFrame[event_id, user_id, track_id, event_type string, event_time timestamp, ms_played long,
    source_file string, row_pos long, raw_record string (null for good rows), reason string, detail string]
    """
    t = F.expr("try_to_timestamp(trim(event_time))")
    ms = F.expr("try_cast(try_cast(trim(ms_played) as double) as bigint)")
    limit = now + F.expr(f"make_dt_interval(0, 0, 0, {float(tolerance_hours) * 3600.0})")
    checks = [
        (F.col("malformed"), R.MALFORMED_JSON),
        (_blank(F.col("event_id")), R.MISSING_EVENT_ID),
        (_blank(F.col("track_id")), R.MISSING_TRACK_ID),
        (~F.coalesce(F.trim("event_type").isin(*EVENT_TYPES), F.lit(False)), R.UNKNOWN_EVENT_TYPE),
        (t.isNull(), R.BAD_EVENT_TIME),
        (~_blank(F.col("ms_played")) & ms.isNull(), R.BAD_MS_PLAYED),
        (F.coalesce(ms < 0, F.lit(False)), R.NEGATIVE_MS_PLAYED),
        (t > limit, R.FUTURE_EVENT_TIME),
    ]
    reason = F.lit(None).cast("string")
    for cond, why in reversed(checks):
        reason = F.when(cond, F.lit(why)).otherwise(reason)
    typed = df.select(F.trim("event_id").alias("event_id"), F.trim("user_id").alias("user_id"),
                      F.trim("track_id").alias("track_id"), F.trim("event_type").alias("event_type"),
                      t.alias("event_time"), ms.alias("ms_played"), "source_file", "row_pos", "raw_record",
                      reason.alias("reason"))
    w = Window.partitionBy("event_id").orderBy(F.col("reason").isNotNull(), "source_file", "row_pos")
    rn = F.row_number().over(w)
    out = typed.withColumn("reason", F.when(F.col("reason").isNull() & (rn > 1), F.lit(R.DUPLICATE_EVENT))
                           .otherwise(F.col("reason")))
    return (out.withColumn("raw_record", F.when(F.col("reason").isNotNull(), F.col("raw_record")))
            .withColumn("detail", F.lit(None).cast("string")))


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
