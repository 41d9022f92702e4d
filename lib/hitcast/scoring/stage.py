"""Catalog-wide scoring: every catalog track gets a hit probability, MERGEd into ``predictions``.

Shape of the work::

    catalog ─┐
    events ──┼─ features_as_of(as_of) ─┐
             │                         ├─ left join on track_id ─ mapInArrow(predict) ─ MERGE predictions
    spectrograms (status, mel) ────────┘

- Features come from the same function that builds ``training_examples`` (no train/serve drift).
- A track without engagement before ``as_of`` is scored in cold-start mode (its engagement features are
  NULL and the model's missing-value indicators say so); a track without an ``ok`` spectrogram is scored
  with ``has_audio = 0``. Neither case fails the job; ``audio_status`` records which applied.
- The model is loaded once per Python worker process (cached by path), as in
  ``pyspark.ml.functions.predict_batch_udf``'s ``make_predict_fn``, and called through a ``tf.function``.
- ``predictions`` is keyed on ``(track_id, model_version)`` and written with a Delta MERGE, so a re-run
  updates rows in place and never adds duplicates.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.schemas import PREDICTIONS
from hitcast.tables import merge_upsert, read_table

log = logging.getLogger(__name__)

#: ``audio_status`` for a catalog track that has no row in ``spectrograms`` at all.
NO_SPECTROGRAM = "no_spectrogram"
#: Spectrogram columns the model reads.
SPEC_COLUMNS = ["mel", "n_mels", "n_frames", "status"]
#: Output of the per-partition predict function (before lineage columns are added).
RAW_SCORES = "track_id string, hit_probability double, popularity_score double"

_BUNDLES: dict[str, object] = {}


@dataclass
class ScoreSummary:
    """What one scoring run did."""

    model_version: str
    as_of: dt.date
    location: str
    scored: int = 0
    cold_start: int = 0
    audio_status: dict[str, int] = field(default_factory=dict)
    table_rows: int = 0

    def __str__(self) -> str:
        status = ", ".join(f"{k}={v}" for k, v in sorted(self.audio_status.items()))
        return (f"model {self.model_version}, as of {self.as_of}: {self.scored} tracks scored "
                f"({self.cold_start} cold start; audio status {status}); table {self.location} "
                f"({self.table_rows} rows)")


def default_as_of(events: DataFrame) -> dt.date:
    """The day after the latest known event: "now" in the data's own time.

    Parameters
    ----------
    events : DataFrame
        ``engagement_events`` (``event_time`` timestamp).
    """
    last = events.agg(F.max("event_time").alias("t")).first()["t"]
    if last is None:
        return dt.date.today()
    return last.date() + dt.timedelta(days=1)


def scoring_inputs(features: DataFrame, spectrograms: DataFrame) -> DataFrame:
    """Attach each track's spectrogram (if any) to its features.

    Parameters
    ----------
    features : DataFrame
        One row per catalog track: ``track_id``, ``cold_start``, ``genre`` and the numeric features.
    spectrograms : DataFrame
        ``hitcast.schemas.SPECTROGRAMS``.

    Returns
    -------
    DataFrame
        ``features`` plus ``mel`` (binary, null unless status is ``ok``), ``n_mels``, ``n_frames`` and
        ``status`` (``no_spectrogram`` when the track has no spectrogram row).
    """
    spec = spectrograms.select("track_id", *SPEC_COLUMNS)
    return (features.join(spec, "track_id", "left")
            .withColumn("status", F.coalesce(F.col("status"), F.lit(NO_SPECTROGRAM)))
            .withColumn("mel", F.when(F.col("status") == "ok", F.col("mel"))))


def _bundle(path: str):
    """The model bundle at ``path``, loaded once per Python process."""
    if path not in _BUNDLES:
        from hitcast.model.bundle import load_bundle

        _BUNDLES[path] = load_bundle(path)
        log.info("loaded model bundle %s in worker", path)
    return _BUNDLES[path]


def predict_partitions(model_path: str):
    """A ``mapInArrow`` function that scores record batches with the bundle at ``model_path``.

    The returned function maps ``Iterator[pa.RecordBatch]`` (scoring inputs) to record batches with
    schema :data:`RAW_SCORES`. Batches are bounded by ``spark.sql.execution.arrow.maxRecordsPerBatch``,
    so worker memory does not grow with the catalog.
    """
    def predict(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        bundle = _bundle(model_path)
        for batch in batches:
            pdf = batch.to_pandas()
            out = bundle.predict_pandas(pdf)
            yield pa.RecordBatch.from_pydict({
                "track_id": pa.array(pdf["track_id"].astype(str).tolist(), pa.string()),
                "hit_probability": pa.array(out["hit_probability"].astype("float64").to_numpy()),
                "popularity_score": pa.array(out["popularity_score"].astype("float64").to_numpy(),
                                             from_pandas=True),
            })

    return predict


def score_catalog(inputs: DataFrame, *, model_path: str, model_version: str, as_of: dt.date,
                  scored_at: dt.datetime, partitions: int) -> DataFrame:
    """Score every row of ``inputs`` (see :func:`scoring_inputs`).

    Returns
    -------
    DataFrame
        Schema ``hitcast.schemas.PREDICTIONS``: one row per input track.
    """
    meta = inputs.select("track_id", "cold_start", F.col("status").alias("audio_status"))
    raw = inputs.repartition(partitions).mapInArrow(predict_partitions(model_path), RAW_SCORES)
    scored = (raw.join(meta, "track_id")
              .withColumn("model_version", F.lit(model_version))
              .withColumn("as_of", F.lit(as_of).cast("date"))
              .withColumn("scored_at", F.lit(scored_at).cast("timestamp")))
    return scored.select(*[f.name for f in PREDICTIONS.fields])


def run_scoring(spark: SparkSession, cfg: Config, *, version: str | None = None,
                as_of: dt.date | None = None) -> ScoreSummary:
    """Score the whole catalog with one model version and MERGE the result into ``predictions``.

    Parameters
    ----------
    version
        A model version, or ``latest`` (default: ``cfg.score.model_version``).
    as_of
        Features use events strictly before this date (default: ``cfg.score.as_of`` or the day after
        the last event).
    """
    from hitcast.features.examples import features_as_of
    from hitcast.model.bundle import resolve_model

    model_version, model_path = resolve_model(spark, cfg, version or cfg.score.model_version)
    catalog = read_table(spark, cfg, "catalog")
    events = read_table(spark, cfg, "engagement_events")
    if as_of is None:
        as_of = dt.date.fromisoformat(cfg.score.as_of) if cfg.score.as_of else default_as_of(events)
    spectrograms = read_table(spark, cfg, "spectrograms")
    partitions = max(1, spark.sparkContext.defaultParallelism * cfg.score.partitions_per_core)
    scored_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    log.info("scoring the catalog as of %s with model %s (%d partitions)", as_of, model_version, partitions)
    scored = (features_as_of(catalog, events, as_of=as_of, cfg=cfg)
              .transform(lambda df: scoring_inputs(df, spectrograms))
              .transform(lambda df: score_catalog(df, model_path=str(model_path), model_version=model_version,
                                                  as_of=as_of, scored_at=scored_at, partitions=partitions)))
    # Materialise once: the MERGE and the summary read the same scores (the model runs once per track).
    staged = str(cfg.path(cfg.paths.warehouse) / "_staging" / "predictions")
    scored.write.format("delta").mode("overwrite").save(staged)
    scored = spark.read.format("delta").load(staged)
    location = cfg.table("predictions")
    merge_upsert(spark, scored, location=location, keys=["track_id", "model_version"])
    stats = scored.groupBy("audio_status").agg(F.count("*").alias("n"),
                                               F.sum(F.col("cold_start").cast("int")).alias("cold")).collect()
    return ScoreSummary(model_version=model_version, as_of=as_of, location=location,
                        scored=sum(r["n"] for r in stats), cold_start=sum(r["cold"] or 0 for r in stats),
                        audio_status={r["audio_status"]: r["n"] for r in stats},
                        table_rows=spark.read.format("delta").load(location).count())
