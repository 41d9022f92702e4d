"""Delta tables: existence, reads with clear errors, the one MERGE upsert, the latest version."""
from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from pyspark.sql import DataFrame, SparkSession

from hitcast.config import Config
from hitcast.errors import TableMissingError

log = logging.getLogger(__name__)

#: The session setting Delta copies into ``commitInfo.userMetadata`` of every commit while it is set.
USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"

#: The job that creates each table, for error messages.
PRODUCER = {
    "catalog": "jobs/ingest.py",
    "engagement_events": "jobs/ingest.py",
    "engagement_daily": "jobs/ingest.py",
    "quarantine": "jobs/ingest.py",
    "track_aliases": "jobs/ingest.py",
    "training_examples": "jobs/features.py",
    "spectrograms": "jobs/spectrograms.py",
    "models": "jobs/train.py",
    "model_promotions": "jobs/promote.py",
    "predictions": "jobs/score.py",
}


@dataclass(frozen=True)
class MergeResult:
    """Rows a MERGE (or the write that created the table) inserted and updated."""

    inserted: int = 0
    updated: int = 0


def table_exists(spark: SparkSession, location: str) -> bool:
    """True if ``location`` holds a Delta table."""
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, location)


def read_table(spark: SparkSession, cfg: Config, name: str, *, version: int | None = None) -> DataFrame:
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
    """The latest Delta version at ``location`` (``None`` if there is no table).

    The highest ``<version>.json`` commit file in ``_delta_log`` (the Delta protocol names every commit
    so): one directory listing through the Hadoop file system of ``location`` (local, HDFS, S3, ...),
    no Spark job.
    """
    versions = _commit_versions(spark, location)
    return max(versions) if versions else None


def _log_dir(spark: SparkSession, location: str):
    jvm = spark.sparkContext._jvm
    log_dir = jvm.org.apache.hadoop.fs.Path(location.rstrip("/") + "/_delta_log")
    return log_dir, log_dir.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def _commit_versions(spark: SparkSession, location: str) -> list[int]:
    log_dir, fs = _log_dir(spark, location)
    if not fs.exists(log_dir):
        return []
    return [int(name[:-5]) for name in (s.getPath().getName() for s in fs.listStatus(log_dir))
            if len(name) == 25 and name.endswith(".json") and name[:20].isdigit()]


def remove_older(spark: SparkSession, folder: str, *, hours: float) -> list[str]:
    """Remove the entries of ``folder`` (through its Hadoop file system) last modified more than ``hours``
    ago; returns their names (none when ``folder`` does not exist)."""
    import time

    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(folder)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(path):
        return []
    cutoff = (time.time() - hours * 3600) * 1000
    removed = []
    for status in fs.listStatus(path):
        if status.getModificationTime() < cutoff and fs.delete(status.getPath(), True):
            removed.append(status.getPath().getName())
    return sorted(removed)


def latest_commits(spark: SparkSession, location: str, last: int) -> list[dict]:
    """The ``commitInfo`` of the table's latest ``last`` commits (``version`` added), newest first.

    Read from the commit files of ``_delta_log`` through the Hadoop file system of ``location``, like
    :func:`table_version`: no Spark job and no generated code (``DeltaTable.history`` compiles new code on
    every call). A commit without ``commitInfo`` (optional in the Delta protocol) is left out.
    """

    jvm = spark.sparkContext._jvm
    log_dir, fs = _log_dir(spark, location)
    out = []
    for version in sorted(_commit_versions(spark, location), reverse=True)[:last]:
        stream = fs.open(jvm.org.apache.hadoop.fs.Path(log_dir, f"{version:020d}.json"))
        try:
            text = jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()
        for line in text.splitlines():
            if '"commitInfo"' in line:
                info = json.loads(line).get("commitInfo")
                if isinstance(info, dict):
                    out.append({**info, "version": version})
                break
    return out


def remove_path(spark: SparkSession, location: str) -> bool:
    """Delete the file or folder ``location`` (recursively) through its Hadoop file system; True if it existed."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(location)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return bool(fs.delete(path, True))


def last_operation_metrics(spark: SparkSession, location: str) -> dict[str, int]:
    """The integer ``operationMetrics`` of the table's latest commit (``numTargetRowsInserted`` ...)."""
    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, location).history(1).select("operationMetrics").first()
    return {k: int(v) for k, v in (row["operationMetrics"] or {}).items() if str(v).isdigit()}


def merge_upsert(spark: SparkSession, df: DataFrame, *, location: str, keys: Sequence[str],
                 update: bool | str = True, partition_by: Sequence[str] = (), metrics: bool = True) -> MergeResult:
    """MERGE ``df`` into the Delta table at ``location`` on ``keys``; create the table from ``df`` if absent.

    Parameters
    ----------
    df
        Source rows; must be unique on ``keys`` (the MERGE fails otherwise, by design).
    keys
        Key columns, compared null-safely (``<=>``).
    update
        What happens to a matched target row: ``True`` replaces it, ``False`` keeps it (insert-only: a
        re-run over the same rows changes nothing), a string is a SQL condition over ``t`` (target) and
        ``s`` (source) under which it is replaced, e.g. ``"s.updated_at > t.updated_at"``; source rows that
        match a target row without meeting it are left out first, so they make Delta rewrite no file.
    partition_by
        Physical partitioning when the table is created.
    metrics
        Read the counts back from the commit (a history query); False returns ``(0, 0)`` without it.

    Returns
    -------
    MergeResult
        From the commit's operation metrics; ``(0, 0)`` when the MERGE changed nothing (and so committed
        no new version).
    """
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    if not table_exists(spark, location):
        writer = df.write.format("delta").mode("overwrite")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.save(location)
        log.info("created Delta table %s", location)
        return MergeResult(inserted=last_operation_metrics(spark, location).get("numOutputRows", 0))
    cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    before = table_version(spark, location) if metrics else None
    target = DeltaTable.forPath(spark, location)
    if isinstance(update, str):
        # A MERGE that also inserts rewrites every file holding a matched row, whatever the update's condition
        # (measured: a re-ingest of an unchanged catalog rewrote it all and committed a version). Source rows
        # that match a row they would not update change nothing: leave them out.
        df = df.alias("s").join(target.toDF().alias("t"), F.expr(f"{cond} AND NOT coalesce({update}, false)"),
                                "left_anti")
    builder = target.alias("t").merge(df.alias("s"), cond)
    if update is True:
        builder = builder.whenMatchedUpdateAll()
    elif isinstance(update, str):
        builder = builder.whenMatchedUpdateAll(condition=update)
    builder.whenNotMatchedInsertAll().execute()
    if not metrics or table_version(spark, location) == before:
        return MergeResult()
    m = last_operation_metrics(spark, location)
    return MergeResult(inserted=m.get("numTargetRowsInserted", 0), updated=m.get("numTargetRowsUpdated", 0))


@contextmanager
def tagged_commits(spark: SparkSession, metadata: str | None) -> Iterator[None]:
    """Commits made in the block (by any thread of the session) carry ``metadata`` as ``userMetadata``."""
    if metadata is None:
        yield
        return
    spark.conf.set(USER_METADATA, metadata)
    try:
        yield
    finally:
        spark.conf.unset(USER_METADATA)


def commit_metadata(spark: SparkSession, location: str, key: str) -> Any:
    """The value under ``key`` in the ``userMetadata`` (a JSON object) of the table's latest commit, else None."""
    commits = latest_commits(spark, location, 1)
    try:
        meta = json.loads(commits[0].get("userMetadata") or "") if commits else None
    except ValueError:
        return None
    return meta.get(key) if isinstance(meta, dict) else None


def fingerprint(df: DataFrame, exclude: Sequence[str] = ()) -> dict[str, Any]:
    """Order-independent content fingerprint: row count and the sum of ``xxhash64`` over the columns.

    Parameters
    ----------
    df : DataFrame
    exclude : sequence of str
        Columns left out (e.g. computation timestamps that change without the content changing).

    Returns
    -------
    dict
        ``{"rows": int, "xxhash64_sum": str}`` (the sum as a decimal string, exact).
    """
    from pyspark.sql import functions as F

    cols = sorted(c for c in df.columns if c not in set(exclude))
    row = df.agg(F.count(F.lit(1)).alias("n"),
                 F.sum(F.xxhash64(*cols).cast("decimal(38,0)")).alias("h")).first()
    return {"rows": int(row["n"]), "xxhash64_sum": str(row["h"] if row["h"] is not None else 0)}
