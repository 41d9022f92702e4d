"""The ``track_aliases`` table: this run's track identities, resolved with the stored ones
(:mod:`hitcast.ingest.identity`), written back with one MERGE.

Only the distinct identities of a run travel to the driver (one row per distinct ``track_id``, ids and key),
with the stored aliases of the groups they touch: not the events, and not the whole table.
"""
from __future__ import annotations

import datetime as dt
import logging
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from hitcast.ingest.identity import Resolution, Sighting, StoredAlias, resolve
from hitcast.ingest.trackkey import track_key_column
from hitcast.schemas import TRACK_ALIASES
from hitcast.tables import MergeResult, merge_upsert, table_exists

log = logging.getLogger(__name__)

#: Columns of a sightings frame (:func:`event_sightings`, :func:`catalog_sightings`).
SIGHTING = ["track_id", "spotify_uri", "isrc", "mbid", "key", "first_seen", "from_catalog"]
ALIAS_KEYS = ["alias_kind", "alias"]
#: A stored alias is rewritten when it moves to another track, or was seen earlier, or a catalog gave it.
ALIAS_UPDATE_WHEN = "s.track_id <> t.track_id OR s.first_seen < t.first_seen OR s.source <> t.source"


def _spotify(track_id: Column, uri: Column) -> Column:
    return F.coalesce(F.nullif(F.trim(uri), F.lit("")),
                      F.when(track_id.startswith("spotify:track:"), track_id))


def event_sightings(good: DataFrame) -> DataFrame:
    """Distinct identities of good events: ``DataFrame[track_id, spotify_uri, isrc, mbid, key string,
    first_seen timestamp, from_catalog boolean]`` (the key of the artist and title, computed once per
    distinct spelling; ``first_seen`` the earliest event)."""
    cols = {c: (F.col(c) if c in good.columns else F.lit(None).cast("string")) for c in
            ("artist_name", "title", "spotify_uri", "isrc", "mbid")}
    spell = (good.select("track_id", "event_time", *[v.alias(k) for k, v in cols.items()])
             .groupBy("track_id", "artist_name", "title", "spotify_uri", "isrc", "mbid")
             .agg(F.min("event_time").alias("first_seen")))
    keyed = spell.withColumn("key", F.when(F.col("track_id").startswith("key:"), F.col("track_id"))
                             .otherwise(track_key_column(F.col("artist_name"), F.col("title"))))
    return (keyed.withColumn("spotify_uri", _spotify(F.col("track_id"), F.col("spotify_uri")))
            .groupBy("track_id", "spotify_uri", "isrc", "mbid", "key").agg(F.min("first_seen").alias("first_seen"))
            .withColumn("from_catalog", F.lit(False)).select(*SIGHTING))


def catalog_sightings(winners: DataFrame, now: Column) -> DataFrame:
    """The identities of this run's catalog rows (``DataFrame[CATALOG..., isrc, spotify_uri, mbid]``), first
    seen ``now``; the key only for a row with a title."""
    return (winners.select("track_id", _spotify(F.col("track_id"), F.col("spotify_uri")).alias("spotify_uri"),
                           "isrc", "mbid", track_key_column(F.col("artist_name"), F.col("title")).alias("key"),
                           now.alias("first_seen"), F.lit(True).alias("from_catalog"))
            .dropDuplicates(["track_id", "spotify_uri", "isrc", "mbid", "key"]))


def _aliases_of(sightings: DataFrame) -> DataFrame:
    kind = (F.when(F.col("track_id").startswith("key:"), "key")
            .when(F.col("track_id").startswith("spotify:track:"), "spotify_uri").otherwise("track_id"))
    parts = [sightings.select(kind.alias("alias_kind"), F.col("track_id").alias("alias"))]
    parts += [sightings.where(F.col(c).isNotNull()).select(F.lit(c).alias("alias_kind"), F.col(c).alias("alias"))
              for c in ("spotify_uri", "isrc", "mbid", "key")]
    return reduce(DataFrame.unionByName, parts).distinct()


def stored_aliases(spark: SparkSession, location: str, sightings: DataFrame) -> list[StoredAlias]:
    """Every stored alias of every stored track that shares an identifier with ``sightings``."""
    if not table_exists(spark, location):
        return []
    table = spark.read.format("delta").load(location)
    touched = table.join(_aliases_of(sightings), ALIAS_KEYS, "left_semi").select("track_id").distinct()
    rows = table.join(touched, "track_id", "left_semi").collect()
    return [StoredAlias(r.alias_kind, r.alias, r.track_id, r.first_seen, r.source) for r in rows]


def catalog_ids(spark: SparkSession, catalog_location: str, ids: set[str]) -> set[str]:
    """The ids of ``ids`` that the catalog holds from a catalog file (not derived from the logs)."""
    if not ids or not table_exists(spark, catalog_location):
        return set()
    wanted = spark.createDataFrame([(i,) for i in sorted(ids)], "track_id string")
    rows = (spark.read.format("delta").load(catalog_location).where("NOT coalesce(derived_from_logs, false)")
            .join(F.broadcast(wanted), "track_id", "left_semi").select("track_id").collect())
    return {r.track_id for r in rows}


def resolve_run(spark: SparkSession, sightings: DataFrame, *, aliases_location: str,
                catalog_location: str) -> Resolution:
    """Resolve this run's ``sightings`` against the stored aliases and the catalog."""
    sightings = sightings.persist()
    rows = sightings.collect()
    seen = [Sighting(r.track_id, r.first_seen or dt.datetime.max, r.spotify_uri, r.isrc, r.mbid, r.key,
                     bool(r.from_catalog)) for r in rows]
    stored = stored_aliases(spark, aliases_location, sightings)
    ids = {s.track_id for s in seen} | {a.track_id for a in stored}
    resolution = resolve(seen, stored, catalog_ids(spark, catalog_location, ids))
    sightings.unpersist()
    linked = sum(1 for t, c in resolution.canonical.items() if t != c)
    log.info("track identity: %d sightings, %d stored aliases touched; %d ids resolve to another id, %d stored "
             "tracks merge", len(seen), len(stored), linked, len(resolution.merged))
    return resolution


def canonical_ids(spark: SparkSession, resolution: Resolution) -> DataFrame:
    """``DataFrame[source_track_id, canonical_id]``: every resolved id (its own canonical id included)."""
    return spark.createDataFrame(sorted(resolution.canonical.items()), "source_track_id string, canonical_id string")


def write_aliases(spark: SparkSession, location: str, resolution: Resolution, now: dt.datetime) -> MergeResult:
    """MERGE the resolved aliases into ``track_aliases`` (:data:`ALIAS_UPDATE_WHEN`); a re-run changes nothing."""
    rows = [(a.alias_kind, a.alias, a.track_id, a.first_seen, a.source, now)
            for a in resolution.aliases.values()]
    df = spark.createDataFrame(rows, TRACK_ALIASES)
    result = merge_upsert(spark, df, location=location, keys=ALIAS_KEYS, update=ALIAS_UPDATE_WHEN)
    log.info("track_aliases: %d added, %d changed", result.inserted, result.updated)
    return result
