"""Features as of a date, computed once per (``as_of``, catalog version, daily aggregates version).

Features come from the daily aggregates (``engagement_daily``), never the raw events, so computing them
costs the catalog and the days, not the history's events. Scoring the same ``as_of`` again (another
model, a re-run, a changed spectrogram) reads the features stored by the earlier run from the Delta table
``scoring_features`` instead of recomputing them; they are recomputed only when ``catalog`` or
``engagement_daily`` has a new version since then. The table holds :func:`hitcast.features.examples.features_as_of`'s columns (its
``cutoff`` is the ``as_of``) plus the two source versions; each ``as_of`` is replaced as a whole.
"""
from __future__ import annotations

import datetime as dt
import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.features.examples import features_as_of
from hitcast.tables import table_exists

log = logging.getLogger(__name__)

TABLE = "scoring_features"
SOURCES = ("catalog", "engagement_daily")


def _stored_versions(spark: SparkSession, location: str, as_of: dt.date) -> dict[str, int] | None:
    if not table_exists(spark, location):
        return None
    stored = spark.read.format("delta").load(location)
    if not all(f"{s}_version" in stored.columns for s in SOURCES):     # written before engagement_daily
        return None
    row = stored.where(F.col("cutoff") == F.lit(as_of)).select(*[f"{s}_version" for s in SOURCES]).limit(1).first()
    return {s: row[f"{s}_version"] for s in SOURCES} if row else None


def scoring_features(spark: SparkSession, cfg: Config, *, catalog: DataFrame, daily: DataFrame,
                     as_of: dt.date, versions: dict[str, int | None]) -> tuple[DataFrame, bool]:
    """Every catalog track's features as of ``as_of``, from ``scoring_features`` when they are current.

    Parameters
    ----------
    versions
        The Delta versions of ``catalog`` and ``engagement_daily`` that ``catalog`` and ``daily`` read.

    Returns
    -------
    (features, reused)
        ``features``: :func:`features_as_of`'s schema, read back from the stored table; ``reused``: whether
        they were there already.
    """
    location = cfg.table(TABLE)
    wanted = {s: versions.get(s) for s in SOURCES}
    reused = _stored_versions(spark, location, as_of) == wanted
    if not reused:
        fresh = features_as_of(catalog, daily, as_of=as_of, cfg=cfg).select(
            "*", *[F.lit(wanted[s]).cast("long").alias(f"{s}_version") for s in SOURCES])
        writer = fresh.write.format("delta").mode("overwrite")
        if table_exists(spark, location) and all(f"{s}_version" in spark.read.format("delta").load(location).columns
                                                 for s in SOURCES):
            writer = writer.option("replaceWhere", f"cutoff = DATE'{as_of.isoformat()}'")
        else:
            writer = writer.option("overwriteSchema", "true")
        writer.save(location)
        log.info("features as of %s computed from catalog v%s / engagement_daily v%s", as_of,
                 wanted["catalog"], wanted["engagement_daily"])
    else:
        log.info("features as of %s reused from %s (sources unchanged)", as_of, location)
    stored = spark.read.format("delta").load(location).where(F.col("cutoff") == F.lit(as_of))
    return stored.drop(*[f"{s}_version" for s in SOURCES]), reused
