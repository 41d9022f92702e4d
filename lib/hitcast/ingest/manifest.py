"""Which input files an ingest already took in: the Delta table ``ingested_files``.

A file is known by its path relative to the source's configured folder (``ingest.catalog_path`` or
``ingest.events_path``; absolute for a file outside it), its size and its modification time, so a data root
that is moved or copied whole keeps its record. Ingest reads only the catalog and event
files it has not taken in before (a new file, or one rewritten since), so a day's ingest costs the day's
files, not the history's. A file is recorded only after its rows and quarantine rows are committed: a run that
dies before that reads it again, and the MERGEs add nothing twice. A new catalog file's rows meet the stored
rows in the catalog MERGE, which applies the same rule as between files of one run (the later ``updated_at``
wins, then the file name that sorts last); a conflict with a stored row is resolved by that rule rather than
quarantined as ``duplicate_track_id``, which only rows of the same run can be.

Schema: ``source string`` (``catalog`` | ``events``), ``path string``, ``size long``, ``modified_ms long``,
``ingested_at timestamp``; key ``(source, path, size, modified_ms)``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.tables import merge_upsert, table_exists

log = logging.getLogger(__name__)

TABLE = "ingested_files"
KEYS = ["source", "path", "size", "modified_ms"]
SCHEMA = "source string, path string, size long, modified_ms long"


def source_root(cfg: Config, source: str) -> Path:
    """The configured folder of ``source`` (``catalog`` or ``events``): the path itself, or the folder above a
    file or a glob."""
    root = cfg.path(cfg.ingest.catalog_path if source == "catalog" else cfg.ingest.events_path)
    while not root.is_dir() and root != root.parent:
        root = root.parent
    return root.resolve()


def file_key(path: Path, root: Path) -> tuple[str, int, int]:
    """``(path relative to root, else absolute; size in bytes; modification time in ms)`` of a file."""
    st = path.stat()
    full = path.resolve()
    rel = full.relative_to(root) if full.is_relative_to(root) else full
    return str(rel), int(st.st_size), int(st.st_mtime_ns // 1_000_000)


def unseen(spark: SparkSession, cfg: Config, source: str) -> Callable[[Sequence[Path]], list[Path]]:
    """A filter that keeps the files of ``source`` that ``ingested_files`` does not hold as they are now."""
    location = cfg.table(TABLE)
    root = source_root(cfg, source)
    seen: set[tuple[str, int, int]] = set()
    if table_exists(spark, location):
        seen = {(r["path"], r["size"], r["modified_ms"]) for r in spark.read.format("delta").load(location)
                .where(F.col("source") == source).select("path", "size", "modified_ms").collect()}

    def keep(files: Sequence[Path]) -> list[Path]:
        out = [p for p in files if file_key(p, root) not in seen]
        if len(out) < len(files):
            log.info("%s: %d of %d files were ingested before and are unchanged: not read again", source,
                     len(files) - len(out), len(files))
        return out
    return keep


def record(spark: SparkSession, cfg: Config, source: str, files: Sequence[Path], now: Column) -> int:
    """Add ``files`` to ``ingested_files`` (insert-only); returns the rows added."""
    if not files:
        return 0
    root = source_root(cfg, source)
    rows = (spark.createDataFrame([(source, *file_key(p, root)) for p in files], SCHEMA)
            .withColumn("ingested_at", now))
    return merge_upsert(spark, rows, location=cfg.table(TABLE), keys=KEYS, update=False).inserted
