"""Scoring demos before release: a folder of audio files that are not in the catalog, scored by the champion
in cold-start mode (``jobs/score.py --audio-dir DIR [--metadata FILE]``).

Each file is a prospect whose ``track_id`` is its path relative to the folder. Its catalog row comes from the
optional metadata file (artist, title, genre, release date, ...), its audio goes through the same per-track
code as the catalog's spectrogram stage (so a bad file gets the status it would get there), and its features
come from the same function as the catalog's: it has no engagement, so it is a cold start, but its artist
history is real when the artist is in the catalog. The rows are MERGEd into the Delta table ``prospects`` on
``(source_dir, track_id, model_version)``; a re-run over unchanged files changes nothing.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from hitcast.config import Config
from hitcast.errors import InputContractError
from hitcast.features.dailytable import update_engagement_daily
from hitcast.features.examples import features_as_of
from hitcast.schemas import CATALOG, CATALOG_OPTIONAL, ENGAGEMENT_DAILY
from hitcast.model.spec import load_spec
from hitcast.scoring.inputs import (group_sources, light_inputs, with_group_sources, with_mode, with_source_hash,
                                    with_stored_hashes)
from hitcast.scoring.stage import default_as_of, score_candidates
from hitcast.spectrograms.report import audio_dir_files
from hitcast.spectrograms.stage import compute_rows, partitions_for, with_previous
from hitcast.tables import merge_upsert, table_exists

log = logging.getLogger(__name__)

TABLE = "prospects"
#: Metadata columns a prospect may carry (``file`` names it, relative to the folder).
METADATA_COLUMNS = ["file", "artist_name", "release_date", *[c for c in CATALOG_OPTIONAL if c != "updated_at"]]
#: The ``prospects`` table: one row per (folder, file, model version).
PROSPECTS = T.StructType([
    T.StructField("source_dir", T.StringType(), False),
    T.StructField("track_id", T.StringType(), False),           # the file's path relative to source_dir
    T.StructField("model_version", T.StringType(), False),
    T.StructField("title", T.StringType()),
    T.StructField("artist_name", T.StringType()),
    T.StructField("genre", T.StringType()),
    T.StructField("hit_probability", T.DoubleType()),
    T.StructField("popularity_score", T.DoubleType()),
    T.StructField("predicted_hit", T.BooleanType()),
    T.StructField("mode", T.StringType()),                      # cold_start (NULL score: no model input)
    T.StructField("audio_status", T.StringType()),
    T.StructField("audio_error", T.StringType()),
    T.StructField("duration_s", T.DoubleType()),
    T.StructField("reasons", T.ArrayType(T.StructType([T.StructField("input", T.StringType()),
                                                       T.StructField("contribution", T.DoubleType())]))),
    T.StructField("content_hash", T.StringType()),
    T.StructField("input_hash", T.StringType()),
    T.StructField("as_of", T.DateType()),
    T.StructField("run_id", T.StringType()),
    T.StructField("scored_at", T.TimestampType()),
])


def read_metadata(spark: SparkSession, path: str | os.PathLike[str], files: list[str]) -> DataFrame:
    """The prospects' metadata from a CSV (header) or JSON lines file, one row per ``file``.

    Returns
    -------
    DataFrame
        ``file`` plus the :data:`METADATA_COLUMNS` present, typed as in :data:`hitcast.schemas.CATALOG`.

    Raises
    ------
    InputContractError
        Naming the file and the column when there is no ``file`` column, an unknown column, a ``file``
        that is not in the folder, or a ``file`` listed twice.
    """
    path = str(path)
    reader = spark.read.option("header", True).option("mode", "FAILFAST")
    raw = reader.csv(path) if path.lower().endswith((".csv", ".tsv")) else reader.json(path)
    unknown = sorted(set(raw.columns) - set(METADATA_COLUMNS))
    if "file" not in raw.columns:
        raise InputContractError(f"--metadata {path}: no column 'file' (the audio file's path in the folder)")
    if unknown:
        raise InputContractError(f"--metadata {path}: unknown column(s) {unknown}; allowed: {METADATA_COLUMNS}")
    types = {f.name: f.dataType for f in CATALOG.fields}
    meta = raw.select(*[F.col(c).cast(types.get(c, T.StringType())).alias(c) for c in raw.columns])
    rows = meta.select("file").collect()
    listed = [r["file"] for r in rows]
    strays = sorted(set(listed) - set(files))
    if strays:
        raise InputContractError(f"--metadata {path}: column 'file' names {strays[:5]}, not audio files "
                                 f"of the folder")
    twice = sorted({f for f in listed if listed.count(f) > 1})
    if twice:
        raise InputContractError(f"--metadata {path}: column 'file' lists {twice[:5]} more than once")
    return meta


def prospect_catalog(spark: SparkSession, files: list[str], metadata: DataFrame | None, *,
                     release_default: dt.date) -> DataFrame:
    """Catalog rows (:data:`hitcast.schemas.CATALOG` columns) for the files: ``track_id`` = ``audio_path``
    = the relative path, metadata where given, ``release_date`` defaulting to ``release_default`` (an
    unreleased demo is treated as released on the scoring date)."""
    base = spark.createDataFrame([(f,) for f in files], "file string")
    if metadata is not None:
        base = base.join(metadata, "file", "left")
    cols = []
    for f in CATALOG.fields:
        if f.name in ("track_id", "audio_path"):
            cols.append(F.col("file").alias(f.name))
        elif f.name == "release_date":
            have = F.col(f.name) if f.name in base.columns else F.lit(None)
            cols.append(F.coalesce(have.cast("date"), F.lit(release_default)).alias(f.name))
        else:
            cols.append((F.col(f.name) if f.name in base.columns else F.lit(None)).cast(f.dataType).alias(f.name))
    return base.select(*cols)


def prospect_features(prospects: DataFrame, catalog: DataFrame | None, daily: DataFrame | None, *,
                      as_of: dt.date, cfg: Config) -> DataFrame:
    """The prospects' features as of ``as_of``, computed with the catalog's function over the prospects and
    the catalog tracks of the same artists (their history), with those tracks' daily aggregates
    (``engagement_daily``).

    Returns
    -------
    DataFrame
        :func:`hitcast.features.examples.features_as_of`'s schema, one row per prospect.
    """
    spark = prospects.sparkSession
    if catalog is None:
        kin = spark.createDataFrame([], CATALOG)
    else:
        names = prospects.select("artist_name").where(F.col("artist_name").isNotNull()).distinct()
        ids = prospects.select("artist_id").where(F.col("artist_id").isNotNull()).distinct()
        kin = (catalog.join(F.broadcast(names), "artist_name", "left_semi")
               .unionByName(catalog.join(F.broadcast(ids), "artist_id", "left_semi")).dropDuplicates(["track_id"])
               .join(prospects.select("track_id"), "track_id", "left_anti")
               .select(*CATALOG.fieldNames()))
    if daily is None:
        daily = spark.createDataFrame([], ENGAGEMENT_DAILY)
    kin_days = daily.join(kin.select("track_id"), "track_id", "left_semi")
    feats = features_as_of(kin.unionByName(prospects), kin_days, as_of=as_of, cfg=cfg)
    return feats.join(prospects.select("track_id"), "track_id", "left_semi")


def prospect_spectrograms(spark: SparkSession, files: list[str], *, folder: Path, cfg: Config,
                          staging: str) -> DataFrame:
    """Decode every file once (the catalog stage's per-track code) into the Delta table ``staging``
    (replaced on each run) and read it back: :data:`hitcast.spectrograms.stage.ROW_SCHEMA` rows."""
    tracks = spark.createDataFrame([(f, f) for f in files], "track_id string, audio_path string")
    rows = compute_rows(with_previous(tracks, None), dsp=cfg.dsp, roots=[str(folder)],
                        partitions=partitions_for(spark, len(files), cfg.dsp.tracks_per_partition))
    rows.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(staging)
    return spark.read.format("delta").load(staging)


@dataclass
class ProspectsSummary:
    """What one ``--audio-dir`` run did: the ranked rows (files with audio by score, best first; then the
    files whose audio could not be used, scored from their metadata alone)."""

    folder: str
    model_version: str
    as_of: dt.date
    location: str
    page: str
    ranked: list[dict] = field(default_factory=list)
    inserted: int = 0
    updated: int = 0

    def __str__(self) -> str:
        width = max([len("file")] + [len(r["track_id"]) for r in self.ranked])
        lines = [f"prospects in {self.folder}, scored by {self.model_version} as of {self.as_of} (cold start):",
                 f"{'rank':>4}  {'file':<{width}}  {'P(hit)':>6}  {'audio':<11} top reasons"]
        for i, r in enumerate(self.ranked, 1):
            score = "-" if r["hit_probability"] is None else f"{r['hit_probability']:.3f}"
            why = ", ".join(f"{x['input']} {x['contribution']:+.3f}" for x in (r["reasons"] or [])[:3])
            lines.append(f"{i:>4}  {r['track_id']:<{width}}  {score:>6}  {r['audio_status']:<11} "
                         f"{why or r['audio_error'] or ''}")
        statuses: dict[str, int] = {}
        for r in self.ranked:
            statuses[r["audio_status"]] = statuses.get(r["audio_status"], 0) + 1
        lines.append(f"{len(self.ranked)} files ({', '.join(f'{k}={v}' for k, v in sorted(statuses.items()))}); "
                     f"{self.inserted} new and {self.updated} changed rows in {self.location}; page {self.page}")
        return "\n".join(lines)


def run_prospects(spark: SparkSession, cfg: Config, *, folder: str | os.PathLike[str],
                  metadata: str | os.PathLike[str] | None = None, version: str | None = None,
                  as_of: dt.date | None = None, reasons: int | None = None) -> ProspectsSummary:
    """Score every audio file in ``folder`` with the champion (or ``version``) in cold-start mode, MERGE the
    rows into ``prospects`` and write the HTML page ``<reports>/prospects.html``.

    Raises
    ------
    InputContractError
        When ``folder`` is not a directory or holds no audio file, or the metadata file is malformed.
    """
    from hitcast.lifecycle.registry import resolve_model
    from hitcast.scoring.prospects_page import write_page

    root = Path(folder).resolve()
    if not root.is_dir():
        raise InputContractError(f"--audio-dir {root}: not a directory")
    files = audio_dir_files(root)
    if not files:
        raise InputContractError(f"--audio-dir {root}: no audio file in it")
    started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    model_version, model_path = resolve_model(spark, cfg, version or cfg.score.model_version)
    catalog = _table_or_none(spark, cfg, "catalog")
    update_engagement_daily(spark, cfg)
    daily = _table_or_none(spark, cfg, "engagement_daily")
    if as_of is None:
        as_of = (dt.date.fromisoformat(cfg.score.as_of) if cfg.score.as_of
                 else default_as_of(daily) if daily is not None else started.date())
    meta = read_metadata(spark, metadata, files) if metadata else None
    prospects = prospect_catalog(spark, files, meta, release_default=as_of)
    log.info("scoring %d prospects in %s with model %s as of %s", len(files), root, model_version, as_of)
    staging = cfg.path(cfg.paths.warehouse) / "_staging"
    spec = prospect_spectrograms(spark, files, folder=root, cfg=cfg, staging=str(staging / "prospect_spectrograms"))
    model_spec = load_spec(model_path)
    inputs = (prospect_features(prospects, catalog, daily, as_of=as_of, cfg=cfg)
              .withColumn("cold_start", F.lit(True))
              .transform(lambda df: light_inputs(df, spec))
              .transform(lambda df: with_group_sources(df, model_spec, group_sources(spark, cfg, model_spec)))
              .transform(lambda df: with_mode(df, uses_audio=model_spec.uses_audio))
              .transform(lambda df: with_source_hash(df, model_spec)).transform(lambda df: with_stored_hashes(df, None)))
    scored = score_candidates(inputs, spec, model_path=str(model_path), spec=model_spec,
                              reasons=cfg.score.reasons if reasons is None else reasons, full=True, broadcast=True)
    scored = scored.drop("content_hash", "dsp_version", "mel_hash", "embedding")   # a demo's embedding is not kept
    rows = (scored.join(prospects.select("track_id", "title", "artist_name", "genre"), "track_id")
            .join(spec.select("track_id", "content_hash", "duration_s", F.col("error").alias("audio_error")),
                  "track_id")
            .select(F.lit(str(root)).alias("source_dir"), "*", F.lit(model_version).alias("model_version"),
                    F.lit(as_of).cast("date").alias("as_of"), F.lit(_run_id(started)).alias("run_id"),
                    F.lit(started).cast("timestamp").alias("scored_at"))
            .select(*PROSPECTS.fieldNames()))
    rows.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(str(staging / TABLE))
    rows = spark.read.format("delta").load(str(staging / TABLE))
    location = cfg.table(TABLE)
    merged = merge_upsert(spark, rows, location=location, keys=["source_dir", "track_id", "model_version"],
                          update="NOT (s.input_hash <=> t.input_hash AND s.audio_status <=> t.audio_status "
                                 "AND s.as_of <=> t.as_of)")
    ranked = [r.asDict(recursive=True) for r in rows.orderBy((F.col("audio_status") != "ok"),
                                                              F.col("hit_probability").desc_nulls_last(),
                                                              "track_id").collect()]
    page = write_page(ranked, spec, path=cfg.path(cfg.paths.reports) / "prospects.html",
                      title=f"Prospects in {root.name}: {model_version}, as of {as_of}", sample_rate=cfg.dsp.sr,
                      hop_length=cfg.dsp.hop_length)
    return ProspectsSummary(folder=str(root), model_version=model_version, as_of=as_of, location=location,
                            page=str(page), ranked=ranked, inserted=merged.inserted, updated=merged.updated)


def _table_or_none(spark: SparkSession, cfg: Config, name: str) -> DataFrame | None:
    location = cfg.table(name)
    return spark.read.format("delta").load(location) if table_exists(spark, location) else None


def _run_id(started: dt.datetime) -> str:
    return f"prospects-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
