"""Small helpers over Delta tables: existence, reads with clear errors, MERGE upserts, versions."""
from __future__ import annotations

import logging
from typing import Sequence

from pyspark.sql import DataFrame, SparkSession

from hitcast.config import Config
from hitcast.errors import TableMissingError

log = logging.getLogger(__name__)

#: The job that creates each table, for error messages.
PRODUCER = {
    "catalog": "jobs/ingest.py",
    "engagement_events": "jobs/ingest.py",
    "quarantine": "jobs/ingest.py",
    "training_examples": "jobs/features.py",
    "spectrograms": "jobs/spectrograms.py",
    "models": "jobs/train.py",
    "predictions": "jobs/score.py",
}


def table_exists(spark: SparkSession, location: str) -> bool:
    """True if ``location`` holds a Delta table."""
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, location)


def read_table(spark: SparkSession, cfg: Config, name: str, version: int | None = None) -> DataFrame:
    """Read the warehouse table ``name`` (optionally at a Delta ``version``).

    Raises
    ------
    TableMissingError
        Naming the table, its location and the job that produces it.
    """
    location = cfg.table(name)
    if not table_exists(spark, location):
        producer = PRODUCER.get(name, "the job that produces it")
        raise TableMissingError(f"Delta table '{name}' not found at {location}; run {producer} first")
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(location)


def table_version(spark: SparkSession, location: str) -> int | None:
    """The latest Delta version of the table at ``location`` (``None`` if absent)."""
    from delta.tables import DeltaTable

    if not table_exists(spark, location):
        return None
    row = DeltaTable.forPath(spark, location).history(1).select("version").first()
    return int(row["version"]) if row else None


def merge_upsert(spark: SparkSession, df: DataFrame, location: str, keys: Sequence[str],
                 update_when: str | None = None, partition_by: Sequence[str] = ()) -> None:
    """Upsert ``df`` into the Delta table at ``location`` on ``keys``; create it if absent.

    Parameters
    ----------
    df
        Source rows; must be unique on ``keys`` (MERGE fails otherwise, by design).
    update_when
        Optional SQL condition over ``t`` (target) and ``s`` (source) for updating a matched row,
        e.g. ``"s.updated_at > t.updated_at"``. ``None`` updates every matched row.
    """
    from delta.tables import DeltaTable

    if not table_exists(spark, location):
        writer = df.write.format("delta").mode("overwrite")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.save(location)
        log.info("created Delta table %s", location)
        return
    cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    (DeltaTable.forPath(spark, location).alias("t")
     .merge(df.alias("s"), cond)
     .whenMatchedUpdateAll(condition=update_when)
     .whenNotMatchedInsertAll()
     .execute())


def log_version(spark: SparkSession, location: str) -> int | None:
    """The latest Delta version at ``location`` from a listing of its ``_delta_log`` (``None`` if absent).

    The same answer as :func:`table_version`, without reading the history: the highest ``<version>.json``
    commit file in the log (the Delta protocol names every commit so). Costs one directory listing
    through the Hadoop file system of ``location`` (local, HDFS, S3, ...) instead of a Spark job.
    """
    jvm = spark.sparkContext._jvm
    log_dir = jvm.org.apache.hadoop.fs.Path(location.rstrip("/") + "/_delta_log")
    fs = log_dir.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(log_dir):
        return None
    versions = [int(name[:-5]) for name in (s.getPath().getName() for s in fs.listStatus(log_dir))
                if len(name) == 25 and name.endswith(".json") and name[:20].isdigit()]
    return max(versions) if versions else None
