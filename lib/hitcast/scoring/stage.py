"""Catalog-wide scoring: every catalog track gets a hit probability, a mode and its reasons, MERGEd into
``predictions`` (one row per ``(track_id, model_version)``); each run appends a row to ``scoring_runs``.

Shape of the work::

    catalog ─┐
    daily ───┴─ scoring_features(as_of) ─┐          (reused when catalog and engagement_daily are unchanged)
    spectrograms (status, content_hash) ─┼─ light inputs ─ source_hash ─ changed? ─┐
    predictions (stored hashes) ─────────┘                                        │
    audio_embeddings (same model, same audio) ─┐
    spectrograms (mel bytes, the other changed tracks) ─ mapInArrow(input_hash, score, reasons, embeddings)
                                                    └─ staged once ─ MERGE the rescored rows ─ run log
                                                                   └─ MERGE the new embeddings

- Features come from the same function that builds ``training_examples`` (no train/serve drift).
- ``mode``: ``cold_start`` when the track has no engagement before ``as_of`` (its engagement features are
  NULL and the model's missing-value indicators say so), else ``no_audio`` when the model reads audio and
  the track has no ``ok`` spectrogram (``audio_status`` says why), else ``full``.
- Incremental by default, in two steps: Spark skips the tracks whose ``source_hash`` (a fingerprint of
  their features and audio) is unchanged (:mod:`hitcast.scoring.inputs`); the executors hash exactly what
  the model would see for the rest and call the model only where that differs from the stored
  ``input_hash`` (``full=True`` rescores all). Only rescored rows reach the MERGE as new predictions, so
  it updates exactly those rows' scores; a track whose sources changed but whose input did not (a new
  ``artist_name``) gets its new ``source_hash`` stored alone, so the next run skips it in Spark
  (:mod:`hitcast.scoring.staging`).
- A changed track whose audio is the same as when this model last encoded it is scored from its stored
  audio embedding (:mod:`hitcast.scoring.embeddings`), without reading its mel bytes; a full run reads
  every track's mel bytes and stores the embeddings again.
- ``predictions`` has the change data feed on and keeps ``score.history_days`` of history for as-of queries.
"""
from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from typing import NamedTuple

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.errors import HitcastError
from hitcast.schemas import PREDICTIONS
from hitcast.scoring import runlog
from hitcast.scoring.embeddings import found_embeddings, store_embeddings, stored_embeddings, with_audio
from hitcast.features.dailytable import update_engagement_daily
from hitcast.scoring.featurecache import scoring_features
from hitcast.model.spec import ModelSpec, load_spec
from hitcast.scoring.inputs import (MEL_COLUMNS, MODE_COLUMN, MODES, group_sources, light_inputs, with_group_sources,
                                    with_mode, with_source_hash, with_stored_hashes)
from hitcast.scoring.predict import SCORED_DDL, predict_partitions
from hitcast.scoring.staging import add_staged_counts, merge_scored, staged_counts
from hitcast.tables import read_table, remove_older, remove_path, table_exists, table_version

log = logging.getLogger(__name__)

#: Tables a run reads, whose versions the run log records (and the sources of the model spec's other groups).
SOURCES = ("catalog", "engagement_daily", "spectrograms", "predictions")


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
    encoded: int = 0
    sent: int = 0
    refreshed: int = 0
    modes: dict[str, int] = field(default_factory=dict)
    quantiles: dict[str, float] = field(default_factory=dict)
    psi: float | None = None
    table_rows: int = 0
    recovered: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        modes = ", ".join(f"{k}={v}" for k, v in sorted(self.modes.items())) or "none"
        q = self.quantiles
        drift = "first run of this model" if self.psi is None else f"PSI {self.psi:.4f} against the previous run"
        return (f"run {self.run_id}: model {self.model_version}, as of {self.as_of}{' (full)' if self.full else ''}: "
                f"{self.tracks} tracks, {self.rescored} rescored ({modes}; audio encoded for {self.encoded}, the "
                f"rest from stored embeddings or without audio), {self.unchanged} unchanged; {self.sent} with "
                f"changed sources went to the model ({self.refreshed} of them with the same input: fingerprint "
                f"updated); features "
                f"{'reused' if self.features_reused else 'computed'}; scores p05/p50/p95 "
                f"{q.get('p05', float('nan')):.3f}/{q.get('p50', float('nan')):.3f}/{q.get('p95', float('nan')):.3f}, "
                f"{drift}; table {self.location} ({self.table_rows} rows)"
                + (f"; also logged {len(self.recovered)} earlier run(s) that had committed predictions and stopped "
                   f"before their log row: {', '.join(self.recovered)}" if self.recovered else ""))


class Scored(NamedTuple):
    """What :func:`score_into` did (see there)."""

    counts: dict[tuple[bool, str], int]
    encoded: int
    sent: int
    refreshed: int
    skipped: int = 0

    @property
    def tracks(self) -> int:
        """Input tracks: those sent to the executors (``counts``) and those skipped in Spark."""
        return sum(self.counts.values()) + self.skipped

    @property
    def rescored(self) -> int:
        return sum(n for (rescored, _), n in self.counts.items() if rescored)


def default_as_of(daily: DataFrame) -> dt.date:
    """The day after the latest day with an event: "now" in the data's own time.

    Parameters
    ----------
    daily : DataFrame
        ``engagement_daily`` (``event_date`` date).
    """
    last = daily.agg(F.max("event_date").alias("d")).first()["d"]
    if last is None:
        return dt.date.today()
    return last + dt.timedelta(days=1)


def ensure_predictions_table(spark: SparkSession, cfg: Config) -> str:
    """Create ``predictions`` (change data feed and deletion vectors on, ``score.history_days`` of history) if
    absent; check the schema and the properties of an existing one. Returns its location.

    Raises
    ------
    HitcastError
        When an existing table has another schema (from an older hitcast), naming its columns.
    """
    from delta.tables import DeltaTable

    location = cfg.table("predictions")
    days = int(cfg.score.history_days)
    # Deletion vectors: a MERGE that updates 1% of the rows marks them deleted in place and writes the new
    # versions, instead of rewriting every file that holds one of them.
    props = {"delta.enableChangeDataFeed": "true", "delta.enableDeletionVectors": "true",
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


def score_candidates(candidates: DataFrame, spectrograms: DataFrame, *, model_path: str, spec: ModelSpec,
                     reasons: int, full: bool, broadcast: bool, found: DataFrame | None = None,
                     complete: bool = False) -> DataFrame:
    """Attach what the model needs of each candidate's audio and run the model over them on the executors.

    Parameters
    ----------
    candidates : DataFrame
        :func:`hitcast.scoring.inputs.light_inputs` rows with ``scoring_mode``, ``source_hash`` and
        ``prev_hash`` (and the columns of ``spec``'s other input groups).
    spec : ModelSpec
        The model's spec (:func:`hitcast.model.spec.load_spec` of ``model_path``).
    found : DataFrame or None
        The model's stored audio embeddings for these candidates
        (:func:`hitcast.scoring.embeddings.found_embeddings`, persisted); None reads the mel bytes of every
        candidate with audio. Ignored for a model without audio.
    broadcast
        Broadcast ``candidates`` to the embedding and spectrogram scans.
    complete
        ``found`` holds an embedding for every candidate with usable audio: no mel bytes are read.

    Returns
    -------
    DataFrame
        :data:`hitcast.scoring.predict.SCORED_DDL`, one row per candidate.
    """
    if spec.uses_audio:
        fed = with_audio(candidates, spectrograms, found, broadcast=broadcast, complete=complete)
    else:
        fed = candidates.select("*", *[F.lit(None).cast(t).alias(c) for c, t in
                                       zip(MEL_COLUMNS, ("binary", "int", "int"))])
    return fed.mapInArrow(predict_partitions(model_path, reasons=reasons, full=full), SCORED_DDL)


def score_into(spark: SparkSession, inputs: DataFrame, *, spectrograms: DataFrame, location: str,
               model_version: str, model_path: str, as_of: dt.date, run_id: str, scored_at: dt.datetime,
               reasons: int, full: bool, staging: str, broadcast_rows: int,
               embeddings: str | None = None, commit_metadata: str | None = None) -> "Scored":
    """Score ``inputs`` against the rows ``location`` holds for ``model_version``, and MERGE the rescored
    rows into it.

    1. Each track's ``source_hash`` is compared with the stored one in Spark; equal means unchanged (see
       :mod:`hitcast.scoring.inputs`), and the track goes no further. ``full`` sends every track on.
    2. The other tracks get their stored audio embedding (same model, same audio) or else their mel
       bytes, and go to the executors' model, which compares ``input_hash`` and scores (and explains) the
       tracks whose input changed.
    3. The scored rows are written once, as Parquet, to ``staging/<run_id>`` (removed after the run); the
       counts and the MERGEs read them from there, so the model runs once per track. (Not a Delta table: a
       transaction log and its snapshots cost about a second per run and add nothing to a run's scratch.)

    Parameters
    ----------
    inputs : DataFrame
        :func:`hitcast.scoring.inputs.light_inputs` rows with ``scoring_mode`` (no mel bytes).
    spectrograms : DataFrame
        ``hitcast.schemas.SPECTROGRAMS``: where the mel bytes come from.
    broadcast_rows
        Up to this many tracks to rescore, they are broadcast to the embedding and spectrogram scans (no
        shuffle of mel bytes); more take a shuffle join.
    embeddings
        Location of the ``audio_embeddings`` table: read (unless ``full``) and updated with the
        embeddings this run computes. None: neither.
    commit_metadata
        ``userMetadata`` of the MERGE's commit (:func:`hitcast.scoring.runlog.commit_metadata`).

    Returns
    -------
    Scored
        ``counts``: ``{(rescored, mode): tracks}`` over the tracks sent to the executors (in a full run,
        every input track); ``skipped``: tracks skipped in Spark (unchanged sources); ``encoded``: how many
        of the rescored tracks' audio went through the encoder (the others used a stored embedding or had none);
        ``sent``: tracks whose sources changed (sent to the executors); ``refreshed``: of those, the tracks
        whose model input had not changed, whose stored ``source_hash`` alone was updated.
    """
    from concurrent.futures import ThreadPoolExecutor

    from pyspark import StorageLevel
    from pyspark.sql import Observation

    clock = _Clock()
    spec = load_spec(model_path)
    stored = spark.read.format("delta").load(location).where(F.col("model_version") == model_version)
    hashed = inputs.transform(lambda df: with_source_hash(df, spec)).transform(lambda df: with_stored_hashes(df, stored))
    if not full:
        hashed = hashed.where(F.col("prev_source").isNull() | (F.col("prev_source") != F.col("source_hash")))
    # Only the tracks that go on are cached (the scoring plan scans them several times: stored embeddings,
    # mel bytes, the rest); caching the whole catalog's rows cost more than scoring 1% of them (measured at
    # 100,000 tracks: 3-4 s to build, 1.4 s per scan). The catalog's size comes from a count of the inputs
    # (observing it on the way to the filter cost more: it splits the generated code).
    candidates = hashed.drop("prev_source").persist(StorageLevel.MEMORY_AND_DISK)
    found: DataFrame | None = None
    staged = f"{staging.rstrip('/')}/{run_id}"
    pool = ThreadPoolExecutor(1, thread_name_prefix="hitcast-catalog-count")
    try:
        sent, sent_ok, sent_new = _counts_by_mode(candidates)
        _check_modes(sent)
        n_candidates = sum(sent.values())
        # The catalog's size (a count of the inputs; from the Delta log alone when they are a plain table)
        # is counted in the background while the changed tracks are scored and MERGEd: that query is mostly
        # fixed cost (planning, a job), and the executors are idle through most of the MERGE's driver work.
        # Counting by mode too (a scan and an aggregate) cost 0.2-0.9 s more per run at 100,000 tracks, and
        # the run log keeps the modes of the rescored tracks only.
        every = pool.submit(lambda: n_candidates if full else inputs.count())
        if not n_candidates:
            log.info("no track's sources changed; the model is not called (%s)", clock.lap())
            return Scored({}, 0, 0, 0, _skipped(every.result(), n_candidates))
        log.info("%d tracks have changed sources%s; sending them to the model (%s)", n_candidates,
                 " (full run)" if full else "", clock.lap())
        broadcast = n_candidates <= broadcast_rows
        kept = None if full or embeddings is None else stored_embeddings(spark, embeddings, model_version)
        complete = False
        if kept is not None:
            found = found_embeddings(candidates, kept, broadcast=broadcast).persist(StorageLevel.MEMORY_AND_DISK)
            # One row per track in ``kept``: as many found as candidates with audio means none needs mel bytes.
            complete = found.count() == sent_ok
        scored = (candidates
                  .transform(lambda df: score_candidates(df, spectrograms, model_path=model_path, spec=spec,
                                                         reasons=reasons,
                                                         full=full, broadcast=broadcast, found=found,
                                                         complete=complete))
                  .withColumn("model_version", F.lit(model_version)).withColumn("as_of", F.lit(as_of).cast("date"))
                  .withColumn("run_id", F.lit(run_id)).withColumn("scored_at", F.lit(scored_at).cast("timestamp")))
        # The staged rows' counts are observed as they are written: no scan of them for the counts.
        written = Observation(f"scored-{run_id}")
        scored.observe(written, *staged_counts()).write.mode("overwrite").parquet(staged)
        _unpersist(candidates, found)
        scored_counts: dict[tuple[bool, str], int] = {}
        encoded, unchanged = add_staged_counts(scored_counts, written.get)
        log.info("scored the changed tracks (%d through the audio encoder; %d found unchanged) (%s)", encoded,
                 unchanged, clock.lap())
        # In an incremental run every track the executors found unchanged has a new fingerprint: store it.
        refresh = 0 if full else unchanged
        # The schema is known: reading it back from the files' footers would cost one more job.
        _merge_staged(spark, spark.read.schema(scored.schema).parquet(staged), scored_counts, encoded=encoded,
                      refresh=refresh, insert=bool(sent_new), location=location, model_version=model_version,
                      embeddings=embeddings, clock=clock, commit_metadata=commit_metadata)
        return Scored(scored_counts, encoded, n_candidates, refresh, _skipped(every.result(), n_candidates))
    finally:
        pool.shutdown(wait=True)  # the catalog's count, if an error ended the run before it was awaited
        _unpersist(candidates, found)
        remove_path(spark, staged)


def _check_modes(counts: dict[str, int]) -> None:
    """Raise :class:`HitcastError` when ``counts`` (by scoring mode) has a mode not in
    :data:`hitcast.scoring.inputs.MODES`."""
    if set(counts) - set(MODES):
        raise HitcastError(f"a scoring mode other than {', '.join(MODES)} in the inputs: {sorted(counts)}")


def _skipped(every: int, sent: int) -> int:
    """Tracks skipped in Spark: ``every`` input track less those ``sent`` on (logged)."""
    log.info("%d of %d tracks skipped: their sources are unchanged", every - sent, every)
    return every - sent


def _counts_by_mode(df: DataFrame) -> tuple[dict[str, int], int, int]:
    """``({scoring mode: rows}, rows with status ok, rows without a stored prediction)`` of
    :func:`hitcast.scoring.inputs.with_stored_hashes` rows."""
    rows = df.groupBy(MODE_COLUMN).agg(F.count("*").alias("n"), F.count_if(F.col("status") == "ok").alias("ok"),
                                       F.count_if(F.col("prev_hash").isNull()).alias("new")).collect()
    return ({r[MODE_COLUMN]: int(r["n"]) for r in rows}, sum(int(r["ok"]) for r in rows),
            sum(int(r["new"]) for r in rows))


def _unpersist(*frames: DataFrame | None) -> None:
    for df in frames:
        if df is not None:
            df.unpersist()


def _merge_staged(spark: SparkSession, scored: DataFrame, counts: dict[tuple[bool, str], int], *,
                  encoded: int, refresh: int, insert: bool, location: str, model_version: str,
                  embeddings: str | None, clock: "_Clock", commit_metadata: str | None = None) -> None:
    """MERGE a run's staged rows into ``location`` (the rescored rows, and the ``refresh`` stale
    fingerprints; ``insert``: some are new tracks) and store the new audio embeddings."""
    if refresh or any(rescored for rescored, _ in counts):
        with runlog.tagged_commits(spark, commit_metadata):
            merge_scored(spark, scored, location=location, refresh=bool(refresh), insert=insert)
        log.info("merged the rescored rows%s into %s (%s)",
                 f" and {refresh} new fingerprints of unchanged inputs" if refresh else "", location, clock.lap())
    if encoded and embeddings is not None:
        store_embeddings(spark, scored, location=embeddings, model_version=model_version)
        log.info("stored %d audio embeddings in %s (%s)", encoded, embeddings, clock.lap())


class _Clock:
    """Seconds since the previous lap, for the log."""

    def __init__(self) -> None:
        import time

        self._time = time.perf_counter
        self._last = self._time()

    def lap(self) -> str:
        now = self._time()
        out, self._last = f"{now - self._last:.1f} s", now
        return out


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
    from concurrent.futures import ThreadPoolExecutor

    from hitcast.lifecycle.registry import resolve_model

    started = _now()
    run_id = f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    model_version, model_path = resolve_model(spark, cfg, version or cfg.score.model_version)
    update_engagement_daily(spark, cfg)
    spec = load_spec(model_path)
    sources = group_sources(spark, cfg, spec)
    versions = {name: table_version(spark, cfg.table(name)) for name in (*SOURCES, *sources)}
    catalog = read_table(spark, cfg, "catalog")
    daily = read_table(spark, cfg, "engagement_daily")
    spectrograms = read_table(spark, cfg, "spectrograms")
    if as_of is None:
        as_of = dt.date.fromisoformat(cfg.score.as_of) if cfg.score.as_of else default_as_of(daily)
    features, reused = scoring_features(spark, cfg, catalog=catalog, daily=daily, as_of=as_of, versions=versions)
    location = ensure_predictions_table(spark, cfg)
    n_reasons = cfg.score.reasons if reasons is None else reasons
    log.info("scoring the catalog as of %s with model %s (%s, inputs %s, %d reasons)", as_of, model_version,
             "full" if full else "incremental", ", ".join(spec.names), n_reasons)
    inputs = (features.transform(lambda df: light_inputs(df, spectrograms))
              .transform(lambda df: with_group_sources(df, spec, sources))
              .transform(lambda df: with_mode(df, uses_audio=spec.uses_audio)))
    run = {"run_id": run_id, "model_version": model_version, "as_of": as_of, "full": full, "started_at": started,
           "input_versions": {k: v for k, v in versions.items() if v is not None}, "features_reused": reused}
    staging = str(cfg.path(cfg.paths.warehouse) / "_staging" / "predictions")
    # What earlier runs that died left is dealt with in the background, beside the executors' work: a run
    # that committed its predictions and died before its log row is logged, and old scratch folders go.
    with ThreadPoolExecutor(1, thread_name_prefix="hitcast-runlog") as pool:
        recovery = pool.submit(runlog.recover_unlogged, spark, cfg, location, current=run_id)
        stale = pool.submit(remove_older, spark, staging, hours=cfg.score.staging_max_age_hours)
        scored = score_into(
            spark, inputs, spectrograms=spectrograms, location=location, model_version=model_version,
            model_path=str(model_path), as_of=as_of, run_id=run_id, scored_at=started, reasons=n_reasons,
            full=full, broadcast_rows=cfg.score.broadcast_max_rows, embeddings=cfg.table("audio_embeddings"),
            staging=staging, commit_metadata=runlog.commit_metadata(run))
        recovered = recovery.result()
    if stale.result():
        log.warning("removed the scratch folders of runs that died over %s hours ago: %s",
                    cfg.score.staging_max_age_hours, ", ".join(stale.result()))
    modes = {m: n for (rescored, m), n in scored.counts.items() if rescored}
    current = spark.read.format("delta").load(location).where(F.col("model_version") == model_version)
    hist, quantiles = runlog.distribution(current)
    previous = runlog.previous_run(spark, cfg, model_version)
    summary = ScoreSummary(
        run_id=run_id, model_version=model_version, as_of=as_of, location=location, full=full,
        features_reused=reused, tracks=scored.tracks, rescored=scored.rescored,
        unchanged=scored.tracks - scored.rescored, encoded=scored.encoded, sent=scored.sent,
        refreshed=scored.refreshed, modes=modes,
        quantiles=quantiles,
        psi=runlog.psi(previous["score_histogram"], hist) if previous else None, table_rows=sum(hist),
        recovered=recovered)
    runlog.append_run(spark, cfg, {
        **run, "ended_at": _now(), "tracks": summary.tracks, "rescored": summary.rescored,
        "unchanged": summary.unchanged, "modes": modes, "score_quantiles": quantiles, "score_histogram": hist,
        "psi": summary.psi})
    return summary


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
