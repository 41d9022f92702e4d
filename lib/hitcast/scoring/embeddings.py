"""Stored audio embeddings: what the CNN's audio encoder made of a track's spectrogram, per model version.

Scoring splits each model into its audio encoder (mel -> one embedding per ensemble member) and its head
(:mod:`hitcast.model.explain`). The encoder is most of the model's cost and reads about 22 KB of mel bytes
per track; its output is a few hundred bytes. ``audio_embeddings`` (schema :data:`AUDIO_EMBEDDINGS`,
partitioned by ``model_version``) keeps that output with the audio's identity, so that a track whose
features changed but whose audio did not is rescored from its stored embedding: its mel bytes are never
read.

A stored embedding is used only when its ``content_hash`` and ``dsp_version`` equal the track's current
spectrogram's (the mel bytes are a function of those, see :mod:`hitcast.scoring.inputs`), and only for the
model version that made it. ``mel_hash`` (blake2b of the mel bytes) goes into ``input_hash`` exactly as if
the bytes had been read. It is a cache: deleting the table costs one re-encoding, never a wrong score. A
full run (``--full``) reads every track's mel bytes and rewrites the embeddings.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BinaryType, StringType, StructField, StructType

from hitcast.scoring.inputs import MEL_COLUMNS, with_mel
from hitcast.tables import merge_upsert, table_exists

AUDIO_EMBEDDINGS = StructType([
    StructField("model_version", StringType(), False),
    StructField("track_id", StringType(), False),
    StructField("content_hash", StringType()),    # the audio file's sha256 (spectrograms.content_hash)
    StructField("dsp_version", StringType()),     # the DSP settings' hash (spectrograms.dsp_version)
    StructField("mel_hash", StringType()),        # blake2b-128 (hex) of the mel bytes encoded
    StructField("embedding", BinaryType()),       # float32 (ensemble members, width), row-major
])
#: Columns :func:`with_audio` adds besides :data:`hitcast.scoring.inputs.MEL_COLUMNS`.
STORED_COLUMNS = ["mel_hash", "embedding"]
_AUDIO_ID = ["track_id", "content_hash", "dsp_version"]


def stored_embeddings(spark: SparkSession, location: str, model_version: str) -> DataFrame | None:
    """The rows of ``audio_embeddings`` at ``location`` for ``model_version`` (None when the table is absent)."""
    if not table_exists(spark, location):
        return None
    return spark.read.format("delta").load(location).where(F.col("model_version") == model_version)


def found_embeddings(candidates: DataFrame, stored: DataFrame, *, broadcast: bool) -> DataFrame:
    """The rows of ``stored`` (:func:`stored_embeddings`) whose track and audio identity (``content_hash``,
    ``dsp_version``) equal those of a candidate with usable audio (``status`` ok): at most one per candidate,
    ``track_id``, ``content_hash``, ``dsp_version`` and :data:`STORED_COLUMNS`. ``broadcast``: the candidates'
    ids are broadcast to the scan.

    ``stored`` holds one row per track, so when this has as many rows as there are candidates with ``status``
    ok, none of them needs its mel bytes (``complete`` in :func:`with_audio`)."""
    ids = candidates.where(F.col("status") == "ok").select(*_AUDIO_ID)
    return stored.select(*_AUDIO_ID, *STORED_COLUMNS).join(F.broadcast(ids) if broadcast else ids, _AUDIO_ID)


def with_audio(candidates: DataFrame, spectrograms: DataFrame, found: DataFrame | None, *,
               broadcast: bool, complete: bool = False) -> DataFrame:
    """Give each candidate what the model needs of its audio: the stored ``mel_hash`` and ``embedding``
    when one matches its audio, else (``status`` ok) its mel bytes.

    Parameters
    ----------
    candidates : DataFrame
        :func:`hitcast.scoring.inputs.light_inputs` rows (with ``content_hash``, ``dsp_version``, ``status``).
    found : DataFrame or None
        :func:`found_embeddings` of the scoring model for these candidates (persisted by the caller: it is
        read more than once); None reads every candidate's mel bytes.
    broadcast
        Broadcast the candidates to the spectrogram scan (see :func:`hitcast.scoring.inputs.with_mel`) and
        ``found`` to the candidates.
    complete
        ``found`` has a row for every candidate with ``status`` ok (the caller compared the counts): no
        candidate needs its mel bytes (the usual incremental run: features changed, audio did not), and
        the plan reads no spectrogram.

    Returns
    -------
    DataFrame
        ``candidates``' columns plus :data:`hitcast.scoring.inputs.MEL_COLUMNS` (NULL where an embedding
        is used or there is no audio) and :data:`STORED_COLUMNS` (NULL where the mel bytes are read); one
        row per candidate.
    """
    nulls = [F.lit(None).cast("binary").alias("mel"), F.lit(None).cast("int").alias("n_mels"),
             F.lit(None).cast("int").alias("n_frames")]
    if found is None:
        return with_mel(candidates, spectrograms, broadcast=broadcast).select(
            "*", F.lit(None).cast("string").alias("mel_hash"), F.lit(None).cast("binary").alias("embedding"))
    known = candidates.join(F.broadcast(found) if broadcast else found, _AUDIO_ID, "left")
    if complete:
        return known.select(*candidates.columns, *nulls, *STORED_COLUMNS)
    needs_mel = (F.col("status") == "ok") & F.col("embedding").isNull()
    read = with_mel(known.where(needs_mel), spectrograms, broadcast=broadcast)
    rest = known.where(~needs_mel).select("*", *nulls)
    return read.unionByName(rest).select(*candidates.columns, *MEL_COLUMNS, *STORED_COLUMNS)


def store_embeddings(spark: SparkSession, scored: DataFrame, *, location: str, model_version: str) -> int:
    """MERGE the embeddings the encoder computed in a run (rows of ``scored`` with a non-NULL
    ``embedding``) into ``audio_embeddings``, one row per ``(model_version, track_id)``.

    Parameters
    ----------
    scored : DataFrame
        :data:`hitcast.scoring.predict.SCORED_DDL` rows of one run.

    Returns
    -------
    int
        Rows inserted or updated.
    """
    rows = (scored.where(F.col("embedding").isNotNull())
            .select(F.lit(model_version).alias("model_version"), "track_id", "content_hash", "dsp_version",
                    "mel_hash", "embedding"))
    result = merge_upsert(spark, rows, location=location, keys=["model_version", "track_id"],
                          partition_by=["model_version"])
    return result.inserted + result.updated
