"""Catalog-wide scoring: every catalog track gets a hit probability, a mode and its reasons, MERGEd into
``predictions`` (one row per ``(track_id, model_version)``); each run appends a row to ``scoring_runs``.

Shape of the work::

    catalog ─┐
    events ──┴─ scoring_features(as_of) ─┐                       (reused when catalog and events are unchanged)
    spectrograms (status, mel) ──────────┼─ left joins on track_id ─ mapInArrow(hash, score, reasons)
    predictions (stored input_hash) ─────┘        └─ staged once ─ MERGE the rescored rows ─ run log

- Features come from the same function that builds ``training_examples`` (no train/serve drift).
- ``mode``: ``cold_start`` when the track has no engagement before ``as_of`` (its engagement features are
  NULL and the model's missing-value indicators say so), else ``no_audio`` when the model reads audio and
  the track has no ``ok`` spectrogram (``audio_status`` says why), else ``full``.
- Incremental by default: the executors hash exactly what the model would see for each track and call the
  model only where the hash differs from the stored row's ``input_hash`` (``full=True`` rescores all).
  Only rescored rows reach the MERGE, so it updates exactly those rows.
- ``predictions`` has the change data feed on and keeps ``score.history_days`` of history for as-of queries.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.errors import HitcastError
from hitcast.schemas import PREDICTIONS
from hitcast.scoring import runlog
from hitcast.scoring.featurecache import scoring_features
from hitcast.scoring.predict import SCORED_DDL, predict_partitions
from hitcast.tables import merge_upsert, read_table, table_exists, table_version

log = logging.getLogger(__name__)

#: ``audio_status`` for a catalog track that has no row in ``spectrograms`` at all.
NO_SPECTROGRAM = "no_spectrogram"
#: Spectrogram columns the model reads.
SPEC_COLUMNS = ["mel", "n_mels", "n_frames", "status"]
#: Tables a run reads, whose versions the run log records.
SOURCES = ("catalog", "engagement_events", "spectrograms", "predictions")


@dataclass
class ScoreSummary:
    """What one scoring run did (also the run's row in ``scoring_runs``)."""

    run_id: str
    model_version: str
    as_of: dt.date
    location: str
    full: bool = False
    features_reused: bool = False
    tracks: int = 0
    rescored: int = 0
    unchanged: int = 0
    modes: dict[str, int] = field(default_factory=dict)
    quantiles: dict[str, float] = field(default_factory=dict)
    psi: float | None = None
    table_rows: int = 0

    def __str__(self) -> str:
        modes = ", ".join(f"{k}={v}" for k, v in sorted(self.modes.items())) or "none"
        q = self.quantiles
        drift = "first run of this model" if self.psi is None else f"PSI {self.psi:.4f} against the previous run"
        return (f"run {self.run_id}: model {self.model_version}, as of {self.as_of}{' (full)' if self.full else ''}: "
                f"{self.tracks} tracks, {self.rescored} rescored ({modes}), {self.unchanged} unchanged; features "
                f"{'reused' if self.features_reused else 'computed'}; scores p05/p50/p95 "
                f"{q.get('p05', float('nan')):.3f}/{q.get('p50', float('nan')):.3f}/{q.get('p95', float('nan')):.3f}, "
                f"{drift}; table {self.location} ({self.table_rows} rows)")


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


#: The scoring mode's column in the inputs (``mode`` itself is a model feature: Spotify's major/minor).
MODE_COLUMN = "scoring_mode"


def with_mode(inputs: DataFrame, *, uses_audio: bool) -> DataFrame:
    """Add :data:`MODE_COLUMN` (``full``, ``cold_start`` or ``no_audio``, see the module docstring) to
    :func:`scoring_inputs` rows; it becomes ``predictions.mode``."""
    mode = F.when(F.col("cold_start"), "cold_start")
    if uses_audio:
        mode = mode.when(F.col("status") != "ok", "no_audio")
    return inputs.withColumn(MODE_COLUMN, mode.otherwise("full"))


def with_stored_hash(inputs: DataFrame, stored: DataFrame | None) -> DataFrame:
    """Add ``prev_hash``: the ``input_hash`` stored for the track in ``stored`` (one model's predictions)."""
    if stored is None:
        return inputs.withColumn("prev_hash", F.lit(None).cast("string"))
    return inputs.join(stored.select("track_id", F.col("input_hash").alias("prev_hash")), "track_id", "left")


def ensure_predictions_table(spark: SparkSession, cfg: Config) -> str:
    """Create ``predictions`` (change data feed on, ``score.history_days`` of history) if absent; check the
    schema and the retention of an existing one. Returns its location.

    Raises
    ------
    HitcastError
        When an existing table has another schema (from an older hitcast), naming its columns.
    """
    from delta.tables import DeltaTable

    location = cfg.table("predictions")
    days = int(cfg.score.history_days)
    props = {"delta.enableChangeDataFeed": "true",
             "delta.logRetentionDuration": f"interval {days} days",
             "delta.deletedFileRetentionDuration": f"interval {days} days"}
    if not table_exists(spark, location):
        builder = DeltaTable.createIfNotExists(spark).location(location).addColumns(PREDICTIONS)
        for key, value in props.items():
            builder = builder.property(key, value)
        builder.execute()
        return location
    table = DeltaTable.forPath(spark, location)
    have = table.toDF().schema
    if [f.name for f in have.fields] != PREDICTIONS.fieldNames():
        raise HitcastError(f"{location} holds predictions with columns {have.fieldNames()}, not "
                           f"{PREDICTIONS.fieldNames()}: move it away (or delete it) and score again")
    current = table.detail().first()["properties"] or {}
    if any(current.get(k) != v for k, v in props.items()):
        spark.sql(f"ALTER TABLE delta.`{location}` SET TBLPROPERTIES ("
                  + ", ".join(f"'{k}' = '{v}'" for k, v in props.items()) + ")")
    return location


def model_variant(path: Path) -> str:
    """The variant of the model version directory ``path`` (from its ``stats.json``)."""
    return json.loads((Path(path) / "stats.json").read_text())["extra"]["variant"]


def score_inputs(inputs: DataFrame, *, model_path: str, partitions: int, reasons: int, full: bool) -> DataFrame:
    """Run the model over ``inputs`` (:func:`scoring_inputs` + ``mode`` + ``prev_hash``) on the executors.

    Returns
    -------
    DataFrame
        :data:`hitcast.scoring.predict.SCORED_DDL`, one row per input track.
    """
    return inputs.repartition(partitions).mapInArrow(predict_partitions(model_path, reasons=reasons, full=full),
                                                     SCORED_DDL)


def score_into(spark: SparkSession, inputs: DataFrame, *, location: str, model_version: str, model_path: str,
               as_of: dt.date, run_id: str, scored_at: dt.datetime, partitions: int, reasons: int, full: bool,
               staging: str) -> dict[tuple[bool, str], int]:
    """Score ``inputs`` (:func:`scoring_inputs` + ``mode``) against the rows ``location`` holds for
    ``model_version``, and MERGE the rescored rows into it.

    The scored rows are written once to the Delta table ``staging`` (the model runs once per track); the
    counts and the MERGE read them from there.

    Returns
    -------
    dict
        ``{(rescored, mode): tracks}`` over every input track.
    """
    stored = spark.read.format("delta").load(location).where(F.col("model_version") == model_version)
    scored = (inputs
              .transform(lambda df: with_stored_hash(df, stored))
              .transform(lambda df: score_inputs(df, model_path=model_path, partitions=partitions,
                                                 reasons=reasons, full=full))
              .withColumn("model_version", F.lit(model_version)).withColumn("as_of", F.lit(as_of).cast("date"))
              .withColumn("run_id", F.lit(run_id)).withColumn("scored_at", F.lit(scored_at).cast("timestamp")))
    scored.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(staging)
    scored = spark.read.format("delta").load(staging)
    counts = {(bool(r["rescored"]), r["mode"]): int(r["count"])
              for r in scored.groupBy("rescored", "mode").count().collect()}
    if any(rescored for rescored, _ in counts):
        merge_upsert(spark, scored.where("rescored").select(*PREDICTIONS.fieldNames()), location=location,
                     keys=["track_id", "model_version"])
    return counts


def run_scoring(spark: SparkSession, cfg: Config, *, version: str | None = None, as_of: dt.date | None = None,
                full: bool = False, reasons: int | None = None) -> ScoreSummary:
    """Score the catalog with one model version: MERGE the tracks whose inputs changed into ``predictions``,
    append the run to ``scoring_runs``.

    Parameters
    ----------
    version
        A model version, ``champion`` or ``latest`` (default: ``cfg.score.model_version``).
    as_of
        Features use events strictly before this date (default: ``cfg.score.as_of`` or the day after
        the last event).
    full
        Rescore every track, whatever its stored ``input_hash``.
    reasons
        Top inputs explained per track (default ``cfg.score.reasons``; 0 = none).
    """
    from hitcast.model.architecture import input_names
    from hitcast.model.bundle import resolve_model

    started = _now()
    run_id = f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    model_version, model_path = resolve_model(spark, cfg, version or cfg.score.model_version)
    versions = {name: table_version(spark, cfg.table(name)) for name in SOURCES}
    catalog = read_table(spark, cfg, "catalog")
    events = read_table(spark, cfg, "engagement_events")
    spectrograms = read_table(spark, cfg, "spectrograms")
    if as_of is None:
        as_of = dt.date.fromisoformat(cfg.score.as_of) if cfg.score.as_of else default_as_of(events)
    features, reused = scoring_features(spark, cfg, catalog=catalog, events=events, as_of=as_of, versions=versions)
    location = ensure_predictions_table(spark, cfg)
    partitions = max(1, spark.sparkContext.defaultParallelism * cfg.score.partitions_per_core)
    n_reasons = cfg.score.reasons if reasons is None else reasons
    uses_audio = "mel" in input_names(model_variant(model_path))
    log.info("scoring the catalog as of %s with model %s (%d partitions, %s, %d reasons)", as_of, model_version,
             partitions, "full" if full else "incremental", n_reasons)
    inputs = (features.transform(lambda df: scoring_inputs(df, spectrograms))
              .transform(lambda df: with_mode(df, uses_audio=uses_audio)))
    counts = score_into(spark, inputs, location=location, model_version=model_version, model_path=str(model_path),
                        as_of=as_of, run_id=run_id, scored_at=started, partitions=partitions, reasons=n_reasons,
                        full=full, staging=str(cfg.path(cfg.paths.warehouse) / "_staging" / "predictions"))
    modes = {m: n for (rescored, m), n in counts.items() if rescored}
    current = spark.read.format("delta").load(location).where(F.col("model_version") == model_version)
    hist, quantiles = runlog.distribution(current)
    previous = runlog.previous_run(spark, cfg, model_version)
    summary = ScoreSummary(
        run_id=run_id, model_version=model_version, as_of=as_of, location=location, full=full,
        features_reused=reused, tracks=sum(counts.values()), rescored=sum(modes.values()),
        unchanged=sum(n for (rescored, _), n in counts.items() if not rescored), modes=modes, quantiles=quantiles,
        psi=runlog.psi(previous["score_histogram"], hist) if previous else None, table_rows=sum(hist))
    runlog.append_run(spark, cfg, {
        "run_id": run_id, "model_version": model_version, "as_of": as_of, "full": full, "started_at": started,
        "ended_at": _now(), "input_versions": {k: v for k, v in versions.items() if v is not None},
        "features_reused": reused, "tracks": summary.tracks, "rescored": summary.rescored,
        "unchanged": summary.unchanged, "modes": modes, "score_quantiles": quantiles, "score_histogram": hist,
        "psi": summary.psi})
    return summary


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
