"""The ingest run: catalog first (so events can be linked to it), then events, then quarantine."""
from __future__ import annotations

import datetime as dt
import logging
from functools import reduce

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.errors import ConfigError
from hitcast.ingest import manifest
from hitcast.ingest import reasons as R
from hitcast.ingest.catalog import (CATALOG_UPDATE_WHEN, catalog_rows, classify_catalog, read_catalog_files,
                                    resolve_collisions)
from hitcast.ingest.derive_catalog import derived_catalog_rows, ensure_derived_column, merge_derived
from hitcast.ingest.events import classify_events, ensure_source_track_id, event_rows, read_event_files
from hitcast.ingest.profiled import read_profiled_events
from hitcast.ingest.profiles import resolve_profiles
from hitcast.ingest.quarantine import KEYS as QKEYS
from hitcast.ingest.quarantine import quarantine_rows
from hitcast.ingest.resolution import IdentityState, resolve_catalog_only, resolve_events
from hitcast.ingest.summary import IngestSummary
from hitcast.tables import last_operation_metrics, merge_upsert, table_exists, table_version

log = logging.getLogger(__name__)


def resolve_now(cfg: Config) -> dt.datetime:
    """``ingest.now`` (ISO date or date-time, UTC) or the wall clock, as a naive UTC datetime."""
    if not cfg.ingest.now:
        return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    try:
        value = dt.datetime.fromisoformat(cfg.ingest.now.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"ingest.now: {cfg.ingest.now!r} is not an ISO date/time") from exc
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def _reason_counts(df: DataFrame) -> tuple[int, dict[str, int]]:
    rows = df.groupBy("reason").count().collect()
    total = sum(r["count"] for r in rows)
    return total, {r["reason"]: int(r["count"]) for r in rows if r["reason"] is not None}


def ingest_catalog(spark: SparkSession, cfg: Config, *, now: F.Column, summary: IngestSummary,
                   identity: IdentityState | None = None) -> DataFrame | None:
    """Classify, resolve and MERGE the catalog; returns its quarantine rows (or None without files). With
    ``identity``, hands it the identities of the rows merged."""
    keep = manifest.unseen(spark, cfg, "catalog") if cfg.ingest.new_files_only else None
    frames, summary.catalog_files = read_catalog_files(spark, cfg, keep)
    s = summary.catalog
    s.files = len(frames)
    if not frames:
        log.log(logging.INFO if keep is not None else logging.WARNING, "no %scatalog file under %s",
                "new " if keep is not None else "", cfg.path(cfg.ingest.catalog_path))
        return None
    classified = reduce(lambda a, b: a.unionByName(b), [classify_catalog(f, cfg.ingest.catalog_required)
                                                        for f in frames]).persist(StorageLevel.MEMORY_AND_DISK)
    s.rows_read, s.quarantined = _reason_counts(classified)
    resolved = resolve_collisions(classified.where(F.col("reason").isNull())).persist(StorageLevel.MEMORY_AND_DISK)
    stats = resolved.groupBy("outcome").agg(F.count(F.lit(1)).alias("n"),
                                             F.countDistinct(F.when(F.col("n_rows") > 1, F.col("track_id")))
                                             .alias("ids")).collect()
    by = {r["outcome"]: int(r["n"]) for r in stats}
    # A colliding track_id has exactly one winner row, so counting distinct ids over the winners counts each once.
    summary.catalog_collisions = next((int(r["ids"]) for r in stats if r["outcome"] == "winner"), 0)
    summary.catalog_updates, summary.catalog_identical = by.get("update", 0), by.get("identical", 0)
    if by.get("duplicate"):
        s.quarantined[R.DUPLICATE_TRACK_ID] = by["duplicate"]
    s.rows_valid = by.get("winner", 0)
    ensure_derived_column(spark, cfg.table("catalog"))
    merged = merge_upsert(spark, catalog_rows(resolved, now), location=cfg.table("catalog"), keys=["track_id"],
                          update=CATALOG_UPDATE_WHEN)
    s.rows_inserted, s.rows_updated = merged.inserted, merged.updated
    if identity is not None:
        identity.add_catalog(resolved.where(F.col("outcome") == "winner"), now)
    dups = (resolved.where(F.col("outcome") == "duplicate")
            .select("source_file", "raw_record", F.lit(R.DUPLICATE_TRACK_ID).alias("reason"),
                    F.concat(F.lit("track_id="), F.col("track_id")).alias("detail")))
    bad = classified.where(F.col("reason").isNotNull()).select("source_file", "raw_record", "reason", "detail")
    return bad.unionByName(dups)


def split_not_music(raw: DataFrame) -> tuple[DataFrame, dict[str, int]]:
    """Records an event profile marks ``not_a_track`` (counted by rule, skipped) and the rest."""
    if "not_a_track" not in raw.columns:
        return raw, {}
    counts = raw.where(F.col("not_a_track").isNotNull()).groupBy("not_a_track").count().collect()
    return raw.where(F.col("not_a_track").isNull()), {r["not_a_track"]: int(r["count"]) for r in counts}


def ingest_events(spark: SparkSession, cfg: Config, *, now: F.Column, summary: IngestSummary,
                  identity: IdentityState | None = None) -> DataFrame | None:
    """Classify, de-duplicate and MERGE the events (after the catalog rows derived from them, if asked);
    returns their quarantine rows (or None). With ``identity``, events get canonical track ids and a listen
    an overlapping export repeats is quarantined (:mod:`hitcast.ingest.resolution`)."""
    s = summary.events
    profiles = resolve_profiles(cfg)
    if profiles is not None and (cfg.ingest.events_column_mapping or cfg.ingest.events_format != "auto"):
        log.warning("events: profile %s decides the reader and the fields; ingest.events_format and "
                    "ingest.events_column_mapping are not used", cfg.ingest.events_profile)
    keep = manifest.unseen(spark, cfg, "events") if cfg.ingest.new_files_only else None
    if profiles is None:
        raw, summary.event_files = read_event_files(spark, cfg, None, keep)
    else:
        read = read_profiled_events(spark, cfg, profiles, keep)
        raw, summary.event_files = read.raw, read.files
        summary.event_profiles, summary.unfit_files = read.profiles, read.reports
    s.files = len(summary.event_files) + len(summary.unfit_files)
    if raw is None:
        log.log(logging.INFO if keep is not None else logging.WARNING, "no %sevent file under %s",
                "new " if keep is not None else "", cfg.path(cfg.ingest.events_path))
        return None
    raw = raw.persist(StorageLevel.DISK_ONLY)
    events, s.skipped = split_not_music(raw)
    classified = classify_events(events, now, cfg.ingest.future_tolerance_hours).persist(StorageLevel.DISK_ONLY)
    s.rows_read, s.quarantined = _reason_counts(classified)
    s.rows_valid = s.rows_read - sum(s.quarantined.values())
    s.rows_read += sum(s.skipped.values())
    cat_loc = cfg.table("catalog")
    good_all = classified.where(F.col("reason").isNull())
    repeated = None
    if identity is not None:
        good_all, repeated = resolve_events(spark, cfg, good_all, raw, identity, resolve_now(cfg), summary,
                                            exports=profiles is not None)
        s.rows_valid -= summary.overlapping_events
        s.quarantined = {**s.quarantined, R.OVERLAPPING_EXPORT: summary.overlapping_events} \
            if summary.overlapping_events else s.quarantined
    else:
        good_all = good_all.withColumn("source_track_id", F.col("track_id"))
    if cfg.ingest.derive_catalog:
        if "artist_name" in good_all.columns:
            ensure_derived_column(spark, cat_loc)
            derived = merge_derived(spark, derived_catalog_rows(good_all, now), cat_loc)
            summary.derived_inserted, summary.derived_updated = derived.inserted, derived.updated
        else:
            log.warning("ingest.derive_catalog: the events contract has no artist or title; nothing derived "
                        "(an event profile maps them)")
    if table_exists(spark, cat_loc):
        known = spark.read.format("delta").load(cat_loc).select("track_id")
    else:
        known = spark.createDataFrame([], "track_id string")
    good = event_rows(good_all, known, now)
    summary.unknown_track_events = good.where(~F.col("known_track")).count()
    parts = list(cfg.ingest.events_partition_by)
    ev_loc = cfg.table("engagement_events")
    before = table_version(spark, ev_loc)
    ensure_source_track_id(spark, ev_loc)
    s.rows_inserted = merge_upsert(spark, good.repartition(*parts) if parts else good, location=ev_loc,
                                   keys=["event_id"], update=False, partition_by=parts).inserted
    summary.known_track_flipped = flag_known_tracks(spark, ev_loc, cat_loc)
    bad = classified.where(F.col("reason").isNotNull()).select("source_file", "raw_record", "reason", "detail")
    if repeated is not None:
        bad = bad.unionByName(repeated)
    if keep is not None and before is not None and s.rows_inserted < s.rows_valid:
        bad = bad.unionByName(redelivered(spark, ev_loc, before, good_all, raw))
    return bad


def redelivered(spark: SparkSession, events_location: str, version: int, good: DataFrame,
                raw: DataFrame) -> DataFrame:
    """Quarantine rows (``duplicate_event``) for the good events of this run whose ``event_id`` the table held
    at ``version`` already (delivered again in a file not read before), with their raw records."""
    held = spark.read.format("delta").option("versionAsOf", version).load(events_location).select("event_id")
    again = good.join(held, "event_id", "left_semi").select("source_file", "row_pos")
    return (raw.join(again, ["source_file", "row_pos"], "left_semi")
            .select("source_file", "raw_record", F.lit(R.DUPLICATE_EVENT).alias("reason"),
                    F.lit("event_id ingested before").alias("detail")))


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
    return last_operation_metrics(spark, events_location).get("numTargetRowsUpdated", 0)


def run_ingest(spark: SparkSession, cfg: Config) -> IngestSummary:
    """Load the raw catalog and events into Delta; bad records go to ``quarantine``.

    Re-running over the same files changes no table (MERGE on keys, insert-only for events and
    quarantine, catalog rows updated only when a row wins by the collision rule and differs). With
    ``ingest.new_files_only``, event files already taken in unchanged (``ingested_files``) are not read.

    Returns
    -------
    IngestSummary
        Also logged.
    """
    now_value = resolve_now(cfg)
    now = F.lit(now_value.strftime("%Y-%m-%d %H:%M:%S")).cast("timestamp")
    log.info("ingest with now = %s UTC (future tolerance %s h)", now_value, cfg.ingest.future_tolerance_hours)
    summary = IngestSummary()
    identity = IdentityState() if cfg.ingest.track_identity else None
    for source, step, part in (("catalog", ingest_catalog, summary.catalog),
                               ("events", ingest_events, summary.events)):
        bad = step(spark, cfg, now=now, summary=summary, identity=identity)
        if bad is not None:
            q = quarantine_rows(bad, source, now)
            part.quarantine_inserted = merge_upsert(spark, q, location=cfg.table("quarantine"), keys=QKEYS,
                                                    update=False).inserted
    if identity is not None:
        resolve_catalog_only(spark, cfg, identity, now_value, summary)
    manifest.record(spark, cfg, "catalog", summary.catalog_files, now)
    manifest.record(spark, cfg, "events", summary.event_files, now)
    spark.catalog.clearCache()
    return summary
