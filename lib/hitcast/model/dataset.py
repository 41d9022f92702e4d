"""Training input: ``training_examples`` x ``spectrograms`` (x each input group's source) -> fixed-shape rows -> Petastorm -> ``tf.data``.

Petastorm needs every array in a column to have the same length, so each example is materialised as

=============  ================  ==========================================================
column         type              meaning
=============  ================  ==========================================================
track_id       string            key (with cutoff)
cutoff         string            ISO date
split          string            train | validation | test
is_hit         float             label, 0/1
popularity     float             label, 0-100 (NaN when unknown)
tabular        array<float>      :func:`hitcast.model.tabular.encode_tabular`, length W
mel            binary            uint8 (n_mels * n_frames) bytes; all zeros without audio
has_audio      float             1 when ``mel`` is a real ``ok`` spectrogram of the right shape
<group>        array<float>      per ``numeric`` input group: ``encode_numeric``, length 2C
=============  ================  ==========================================================

(``mel``/``has_audio`` only when the model spec has an audio group; one array per ``numeric`` group, see
:mod:`hitcast.model.spec`.) The encoding is one pandas function
(:func:`encode_rows`) run by ``mapInPandas``, the same NumPy code the inference bundle runs.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from hitcast.audio.dsp import n_frames as dsp_n_frames
from hitcast.config import Config
from hitcast.model.spec import ModelSpec, SpecError
from hitcast.model.tabular import TabularStats, encode_numeric, encode_tabular

log = logging.getLogger(__name__)

CONVERTER_CACHE_CONF = "petastorm.spark.converter.parentCacheDirUrl"


def rows_schema(spec: ModelSpec) -> str:
    """DDL schema of the materialised rows of a model reading ``spec`` (see the module docstring)."""
    base = ("track_id string, cutoff string, split string, is_hit float, popularity float, "
            "tabular array<float>")
    return base + "".join(", mel binary, has_audio float" if g.kind == "audio" else f", {g.name} array<float>"
                          for g in spec.groups if g.kind != "tabular")


def join_spectrograms(examples: DataFrame, spectrograms: DataFrame | None) -> DataFrame:
    """Left-join each example with its track's spectrogram columns.

    Returns
    -------
    DataFrame
        ``examples`` + ``status``, ``mel`` (NULL unless status ``ok``), ``n_mels``, ``n_frames``.
        Without a ``spectrograms`` table every row gets status ``no_spectrogram``.
    """
    if spectrograms is None:
        return (examples.withColumn("status", F.lit("no_spectrogram")).withColumn("mel", F.lit(None).cast("binary"))
                .withColumn("n_mels", F.lit(None).cast("int")).withColumn("n_frames", F.lit(None).cast("int")))
    spec = spectrograms.select("track_id", "status", "mel", "n_mels", "n_frames")
    return (examples.join(spec, "track_id", "left")
            .withColumn("status", F.coalesce("status", F.lit("no_spectrogram")))
            .withColumn("mel", F.when(F.col("status") == "ok", F.col("mel"))))


def join_groups(rows: DataFrame, spec: ModelSpec, sources: Mapping[str, DataFrame]) -> DataFrame:
    """Left-join the columns of every ``numeric`` input group of ``spec`` from its source table.

    Parameters
    ----------
    rows : DataFrame
        One or more rows per track (``track_id``).
    sources : mapping of str to DataFrame
        Source table name -> its rows (one per ``key``), for every ``numeric`` group's ``source``.

    Returns
    -------
    DataFrame
        ``rows`` plus each group's ``columns`` (NULL where the source has no row for the track).

    Raises
    ------
    SpecError
        When a group's source is not in ``sources`` or lacks one of its columns (naming the group).
    """
    for g in spec.of_kind("numeric"):
        if g.source not in sources:
            raise SpecError(f"input group '{g.name}': no rows of its source table '{g.source}' were given")
        table = sources[g.source]
        missing = [c for c in (g.key, *g.columns) if c not in table.columns]
        if missing:
            raise SpecError(f"input group '{g.name}': its source '{g.source}' has no column(s) {', '.join(missing)}")
        rows = rows.join(table.select(F.col(g.key).alias("track_id"), *g.columns), "track_id", "left")
    return rows


def group_sources(spark, cfg: Config, spec: ModelSpec) -> dict[str, DataFrame]:
    """The source tables of ``spec``'s ``numeric`` groups, read from ``cfg``'s warehouse (name -> rows)."""
    from hitcast.tables import read_table

    return {g.source: read_table(spark, cfg, g.source) for g in spec.of_kind("numeric")}


def mel_arrays(pdf: pd.DataFrame, n_mels: int, n_frames: int) -> tuple[list[bytes], np.ndarray]:
    """Fixed-length mel bytes and the ``has_audio`` flag for each row of ``pdf``.

    Parameters
    ----------
    pdf : pandas.DataFrame
        Optional columns ``mel`` (bytes or None), ``n_mels``, ``n_frames``, ``status``.

    Returns
    -------
    (list of bytes, np.ndarray of shape (n,), float32)
        ``n_mels * n_frames`` bytes per row (zeros when the row has no usable spectrogram).
    """
    size = n_mels * n_frames
    zeros = bytes(size)
    n = len(pdf)
    mels = pdf["mel"].tolist() if "mel" in pdf.columns else [None] * n
    status = pdf["status"].tolist() if "status" in pdf.columns else ["ok"] * n
    out, has = [], np.zeros(n, dtype=np.float32)
    for i, (m, s) in enumerate(zip(mels, status)):
        if m is not None and (s is None or s == "ok") and len(m) == size:
            out.append(bytes(m))
            has[i] = 1.0
        else:
            out.append(zeros)
    return out, has


def encode_inputs(pdf: pd.DataFrame, spec: ModelSpec, stats: TabularStats) -> dict[str, Any]:
    """The encoded inputs of every group of ``spec`` for the rows of ``pdf``: the one NumPy encoding of
    training rows, the inference bundle and scoring.

    Parameters
    ----------
    pdf : pandas.DataFrame
        The feature columns and ``genre``; for an ``audio`` group ``mel`` (bytes or None), ``status``; for a
        ``numeric`` group its columns (missing values allowed).

    Returns
    -------
    dict
        ``tabular`` (n, W) float32 (always); with audio ``mel`` (n byte strings of ``n_mels * n_frames``,
        zeros without audio) and ``has_audio`` (n,) float32; per ``numeric`` group ``<name>`` (n, 2C) float32.
    """
    x: dict[str, Any] = {"tabular": encode_tabular(pdf, stats)}
    for g in spec.groups:
        if g.kind == "audio":
            x["mel"], x["has_audio"] = mel_arrays(pdf, stats.n_mels, stats.n_frames)
        elif g.kind == "numeric":
            if g.name not in stats.groups:
                raise SpecError(f"input group '{g.name}': the model's statistics have no entry for it")
            x[g.name] = encode_numeric(pdf, stats.groups[g.name])
    return x


def encode_rows(stats: TabularStats, spec: ModelSpec) -> Callable[[Iterator[pd.DataFrame]],
                                                                   Iterator[pd.DataFrame]]:
    """A ``mapInPandas`` function: joined examples -> rows of :func:`rows_schema`."""
    def encode(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            x = encode_inputs(pdf, spec, stats)
            pop = pd.to_numeric(pdf.get("popularity"), errors="coerce") if "popularity" in pdf else np.nan
            out = pd.DataFrame({
                "track_id": pdf["track_id"].astype(str),
                "cutoff": pdf["cutoff"].astype(str),
                "split": pdf["split"].astype(str),
                "is_hit": pd.to_numeric(pdf["is_hit"], errors="coerce").astype("float32"),
                "popularity": np.asarray(pop, dtype=np.float32) * np.ones(len(pdf), np.float32),
                "tabular": list(x["tabular"]),
            })
            for g in spec.groups:
                if g.kind == "audio":
                    out["mel"], out["has_audio"] = x["mel"], x["has_audio"]
                elif g.kind == "numeric":
                    out[g.name] = list(x[g.name])
            yield out

    return encode


def training_rows(joined: DataFrame, stats: TabularStats, spec: ModelSpec) -> DataFrame:
    """Encode joined examples (see :func:`join_spectrograms`, :func:`join_groups`) into fixed-shape rows."""
    return joined.mapInPandas(encode_rows(stats, spec), rows_schema(spec))


def spectrogram_shape(spectrograms: DataFrame | None, cfg: Config) -> tuple[int, int]:
    """The (n_mels, n_frames) most ``ok`` spectrograms have; from the DSP settings when there are none."""
    if spectrograms is not None:
        row = (spectrograms.where(F.col("status") == "ok").groupBy("n_mels", "n_frames").count()
               .orderBy(F.desc("count"), "n_mels", "n_frames").first())
        if row is not None:
            return int(row["n_mels"]), int(row["n_frames"])
    return cfg.dsp.n_mels, dsp_n_frames(cfg.dsp)


def make_converter(spark, cfg: Config, rows: DataFrame, *, files: int):
    """Materialise ``rows`` for Petastorm as ``files`` Parquet files of one row group each.

    One row group per file makes Petastorm's row-group sharding (``index % shard_count``) predictable,
    so the number of rows of every shard is known before training (:func:`shard_rows`).

    Returns
    -------
    petastorm.spark.SparkDatasetConverter
        Call ``.delete()`` when done (in a ``finally``).
    """
    from petastorm.spark import make_spark_converter

    if not spark.conf.get(CONVERTER_CACHE_CONF, None):
        cache = cfg.path(cfg.train.cache_dir)
        cache.mkdir(parents=True, exist_ok=True)
        spark.conf.set(CONVERTER_CACHE_CONF, cache.as_uri())
    return make_spark_converter(rows.repartition(files), parquet_row_group_size_bytes=1 << 30,
                                dtype="float32")


def shard_rows(file_urls: list[str], shard_count: int) -> list[int]:
    """Rows each Petastorm shard reads (row groups are dealt round robin over the shards).

    Parameters
    ----------
    file_urls : list of str
        The converter's Parquet files (``converter.file_urls``), in reader order.
    """
    import pyarrow.parquet as pq

    sizes: list[int] = []
    for url in file_urls:
        meta = pq.ParquetFile(url.replace("file://", "", 1)).metadata
        sizes += [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    return [sum(sizes[i::shard_count]) for i in range(shard_count)]


def mel_matrix(mels: list[bytes]) -> np.ndarray:
    """Equal-length mel byte strings as one uint8 array of shape (len(mels), bytes each): one copy, no
    per-row tensor (what :func:`mel_input` converts fastest)."""
    return np.frombuffer(b"".join(mels), dtype=np.uint8).reshape(len(mels), -1)


def mel_input(mel, n_mels: int, n_frames: int):
    """Stored mel bytes -> the model's ``mel`` input: the one place this conversion is written.

    Parameters
    ----------
    mel
        A batch of ``n_mels * n_frames``-byte strings (a ``tf.string`` tensor, or a list of bytes), or
        their :func:`mel_matrix` (uint8, shape (batch, n_mels * n_frames)).

    Returns
    -------
    tf.Tensor, shape (batch, n_mels, n_frames), float32
        ``uint8 / 255``, in [0, 1] (see :mod:`hitcast.melcodec` for what the bytes encode).
    """
    import tensorflow as tf

    q = tf.convert_to_tensor(mel) if isinstance(mel, np.ndarray) else tf.io.decode_raw(mel, tf.uint8)
    return tf.reshape(tf.cast(q, tf.float32) * (1.0 / 255.0), (-1, n_mels, n_frames))


def to_model_inputs(batch, n_mels: int, n_frames: int, *, spec: ModelSpec, tabular_width: int | None = None):
    """Map a Petastorm batch (namedtuple of tensors) to ``(inputs dict, hit, popularity)`` tensors.

    ``mel`` bytes go through :func:`mel_input`; a ``numeric`` group's array becomes (batch, 2C). ``tabular``
    gets the static shape (batch, tabular_width) when the width is given: Petastorm declares array columns
    as (None, None), and a training step traced on that unknown width is much slower than one on a known
    width (``make bench-training``).
    """
    import tensorflow as tf

    tab = tf.cast(batch.tabular, tf.float32)
    x = {"tabular": tf.reshape(tab, (-1, tabular_width)) if tabular_width else tab}
    for g in spec.groups:
        if g.kind == "audio":
            x["mel"] = mel_input(batch.mel, n_mels, n_frames)
            x["has_audio"] = tf.reshape(tf.cast(batch.has_audio, tf.float32), (-1, 1))
        elif g.kind == "numeric":
            x[g.name] = tf.reshape(tf.cast(getattr(batch, g.name), tf.float32), (-1, g.width))
    hit = tf.reshape(tf.cast(batch.is_hit, tf.float32), (-1, 1))
    pop = tf.reshape(tf.cast(batch.popularity, tf.float32), (-1, 1))
    return x, hit, pop
