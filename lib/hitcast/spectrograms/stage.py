"""The Spark side of the spectrogram stage: catalog tracks -> Delta table ``spectrograms``.

One pass over the catalog, on the executors, with ``mapInArrow`` (input batches are bounded by
``spark.sql.execution.arrow.maxRecordsPerBatch``, and every batch is answered before the next is
read, so a Python worker's memory does not grow with the catalog):

1. ``with_previous``: left-join each track with what ``spectrograms`` already holds for it;
2. ``compute_rows``: per track, resolve the path, hash the bytes, and decode + log-mel only when the
   path, the bytes or the DSP settings changed (:func:`hitcast.audio.track.process_track`); unchanged
   tracks come out as small ``status = 'unchanged'`` marker rows;
3. ``update_spectrograms`` writes the result:

   - a table created by this run holds nothing to compare with: every row is new, so the rows are
     appended in the same Spark job that computes them, and the workers count them by status on the
     way (a Spark accumulator, updated once per successful task of that job, checked against the
     number of tracks);
   - an existing table: the result is persisted once, counted by status, and its changed rows are
     MERGEd on ``track_id``. Nothing changed -> no MERGE, no new table version.

Output schema: exactly :data:`hitcast.schemas.SPECTROGRAMS`.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import Iterable, Iterator, Sequence

import pyarrow as pa
from pyspark import Accumulator, AccumulatorParam, StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StructType

from hitcast.audio.dsp import dsp_version
from hitcast.audio.paths import real_roots
from hitcast.audio.status import UNCHANGED
from hitcast.audio.track import ROW_KEYS, Previous, process_track
from hitcast.config import Config, DspSection
from hitcast.schemas import SPECTROGRAMS
from hitcast.tables import merge_upsert, read_table, table_exists, table_version
from hitcast.workerprep import prepare_worker

log = logging.getLogger(__name__)

#: ``SPECTROGRAMS`` without ``computed_at`` (added once per run on the driver side).
ROW_SCHEMA = StructType([f for f in SPECTROGRAMS.fields if f.name != "computed_at"])
PREV_COLUMNS = ("prev_audio_path", "prev_hash", "prev_dsp", "prev_status")


@dataclass
class SpectrogramSummary:
    """What one run did. ``recomputed_by_status`` counts the rows written by this run."""

    location: str
    dsp_version: str
    tracks: int
    recomputed: int
    skipped: int
    recomputed_by_status: dict[str, int] = field(default_factory=dict)
    table_by_status: dict[str, int] = field(default_factory=dict)
    table_version: int | None = None
    computed_at: datetime | None = None

    def __str__(self) -> str:
        by_status = ", ".join(f"{k}={v}" for k, v in self.table_by_status.items()) or "empty"
        return (f"{self.tracks} tracks, {self.recomputed} recomputed, {self.skipped} skipped as unchanged "
                f"(dsp_version {self.dsp_version}); table {self.location} (version {self.table_version}) "
                f"by status: {by_status}")


class StatusCounts(AccumulatorParam):
    """Accumulator parameter: ``{status: count}`` dicts, added key by key."""

    def zero(self, value: dict[str, int]) -> dict[str, int]:
        return {}

    def addInPlace(self, value1: dict[str, int], value2: dict[str, int]) -> dict[str, int]:
        for key, n in value2.items():
            value1[key] = value1.get(key, 0) + n
        return value1


def with_previous(tracks: DataFrame, previous: DataFrame | None) -> DataFrame:
    """Add the stored row's inputs to each track.

    Parameters
    ----------
    tracks
        ``track_id string, audio_path string`` (unique ``track_id``).
    previous
        The ``spectrograms`` table, or ``None`` when it does not exist yet.

    Returns
    -------
    DataFrame
        ``track_id, audio_path, prev_audio_path, prev_hash, prev_dsp, prev_status`` (all strings).
    """
    base = tracks.select(F.col("track_id").cast("string"), F.col("audio_path").cast("string"))
    if previous is None:
        return base.select("*", *[F.lit(None).cast("string").alias(c) for c in PREV_COLUMNS])
    prev = previous.select("track_id", F.col("audio_path").alias("prev_audio_path"),
                           F.col("content_hash").alias("prev_hash"), F.col("dsp_version").alias("prev_dsp"),
                           F.col("status").alias("prev_status"))
    return base.join(prev, "track_id", "left")


def map_batches(batches: Iterable[pa.RecordBatch], *, dsp: DspSection, roots: Sequence[str],
                version: str, counts: Accumulator | None = None) -> Iterator[pa.RecordBatch]:
    """The ``mapInArrow`` function: one output batch (``ROW_SCHEMA``) per input batch (``with_previous``).

    ``counts``, when given, is a :class:`StatusCounts` accumulator that receives each batch's
    ``{status: rows}``.
    """
    prepare_worker()  # once per process: cheaper tasks after this one
    schema = to_arrow_schema(ROW_SCHEMA)
    for batch in batches:
        cols = batch.to_pydict()
        rows = [process_track(tid, path, prev=Previous(pa_, ph, pd_, ps), dsp=dsp, roots=roots, version=version)
                for tid, path, pa_, ph, pd_, ps in zip(cols["track_id"], cols["audio_path"], cols["prev_audio_path"],
                                                       cols["prev_hash"], cols["prev_dsp"], cols["prev_status"])]
        if counts is not None:
            seen: dict[str, int] = {}
            for r in rows:
                seen[r["status"]] = seen.get(r["status"], 0) + 1
            counts.add(seen)
        yield pa.RecordBatch.from_pydict({k: [r[k] for r in rows] for k in ROW_KEYS}, schema=schema)


def partitions_for(spark: SparkSession, n_tracks: int, tracks_per_partition: int) -> int:
    """``max(2 x defaultParallelism, ceil(n / tracks_per_partition))``, at most one per track, at least 1."""
    want = max(2 * spark.sparkContext.defaultParallelism, math.ceil(n_tracks / max(1, tracks_per_partition)))
    return max(1, min(n_tracks, want))


def compute_rows(planned: DataFrame, *, dsp: DspSection, roots: Sequence[str], partitions: int,
                 counts: Accumulator | None = None) -> DataFrame:
    """Run :func:`map_batches` over ``planned`` (from :func:`with_previous`) in ``partitions`` tasks.

    Parameters
    ----------
    counts
        Optional :class:`StatusCounts` accumulator the workers add ``{status: rows}`` to. It is exact
        only when each task runs once within a result stage, as in a single write of these rows.

    Returns
    -------
    DataFrame
        ``ROW_SCHEMA`` (``SPECTROGRAMS`` without ``computed_at``), including ``unchanged`` marker rows.
    """
    fn = partial(map_batches, dsp=dsp, roots=real_roots(roots), version=dsp_version(dsp), counts=counts)
    return planned.repartition(partitions).mapInArrow(fn, ROW_SCHEMA)


def create_table(spark: SparkSession, location: str) -> None:
    """Create an empty ``spectrograms`` Delta table with exactly ``SPECTROGRAMS`` at ``location``."""
    from delta.tables import DeltaTable

    DeltaTable.createIfNotExists(spark).location(location).addColumns(SPECTROGRAMS).execute()


def count_by(df: DataFrame, column: str = "status") -> dict[str, int]:
    """``{value: count}`` of ``column``, sorted by value (sorted on the driver: no Spark sort stage)."""
    return dict(sorted((r[column], int(r["count"])) for r in df.groupBy(column).count().collect()))


def _append_new(spark: SparkSession, rows: DataFrame, location: str, n_tracks: int,
                counts: Accumulator) -> dict[str, int]:
    """Append every row of ``rows`` (none is ``unchanged``) to the empty table at ``location``.

    Returns the rows by status, as the workers counted them while the append ran; if that count does
    not add up to ``n_tracks`` (it cannot, unless a task's update was lost), the table is counted instead.
    """
    if n_tracks:
        rows.write.format("delta").mode("append").save(location)
    by_status = dict(sorted(counts.value.items()))
    if sum(by_status.values()) != n_tracks:
        log.warning("status counts from the workers add up to %d, not %d tracks: counting the table %s",
                    sum(by_status.values()), n_tracks, location)
        by_status = count_by(spark.read.format("delta").load(location).select("status"))
    return by_status


def _merge_changed(spark: SparkSession, rows: DataFrame, location: str) -> dict[str, int]:
    """Persist ``rows`` once, count them by status (``unchanged`` included), MERGE the changed ones."""
    rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        by_status = count_by(rows)
        if any(s != UNCHANGED for s in by_status):
            merge_upsert(spark, rows.where(F.col("status") != UNCHANGED), location=location, keys=["track_id"])
        return by_status
    finally:
        rows.unpersist()


def update_spectrograms(spark: SparkSession, tracks: DataFrame, *, location: str, dsp: DspSection,
                        roots: Sequence[str | os.PathLike[str]], tracks_per_partition: int | None = None,
                        computed_at: datetime | None = None) -> SpectrogramSummary:
    """Bring the ``spectrograms`` table at ``location`` up to date with ``tracks``; return what was done.

    Parameters
    ----------
    tracks
        ``track_id, audio_path`` (e.g. the ``catalog`` table), unique on ``track_id``.
    location
        The Delta table; created with ``SPECTROGRAMS`` if absent (then filled by one append).
    roots
        Audio roots; paths outside them are ``rejected_path``.
    computed_at
        Timestamp of this run's rows (default: now, UTC).
    """
    version = dsp_version(dsp)
    computed_at = computed_at or datetime.now(timezone.utc)
    created = not table_exists(spark, location)
    if created:
        create_table(spark, location)
    n_tracks = tracks.count()
    parts = partitions_for(spark, n_tracks, tracks_per_partition or dsp.tracks_per_partition)
    previous = None if created else spark.read.format("delta").load(location)
    counts = spark.sparkContext.accumulator({}, StatusCounts()) if created else None
    rows = (tracks.transform(lambda df: with_previous(df, previous))
            .transform(lambda df: compute_rows(df, dsp=dsp, roots=[os.fspath(r) for r in roots], partitions=parts,
                                               counts=counts))
            .withColumn("computed_at", F.lit(computed_at)).select(*SPECTROGRAMS.fieldNames()))
    if counts is not None:
        by_status = _append_new(spark, rows, location, n_tracks, counts)
    else:
        by_status = _merge_changed(spark, rows, location)
    written = {k: v for k, v in by_status.items() if k != UNCHANGED}
    table_counts = written if created else count_by(spark.read.format("delta").load(location).select("status"))
    summary = SpectrogramSummary(
        location=location, dsp_version=version, tracks=n_tracks, recomputed=sum(written.values()),
        skipped=by_status.get(UNCHANGED, 0), recomputed_by_status=written, table_by_status=table_counts,
        table_version=table_version(spark, location), computed_at=computed_at)
    return summary


def run_spectrograms(spark: SparkSession, cfg: Config) -> SpectrogramSummary:
    """The spectrogram stage: the ``catalog`` table's audio into the warehouse table ``spectrograms``."""
    return update_spectrograms(spark, catalog_tracks(spark, cfg), location=cfg.table("spectrograms"),
                               dsp=cfg.dsp, roots=[cfg.path(r) for r in cfg.paths.audio_roots])


def catalog_tracks(spark: SparkSession, cfg: Config) -> DataFrame:
    """``track_id, audio_path`` of the ``catalog`` table."""
    return read_table(spark, cfg, "catalog").select("track_id", "audio_path")


