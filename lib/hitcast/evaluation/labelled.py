"""Any catalog with a known label and release dates, trained and evaluated through configuration alone.

A catalog ingested with ``known_label`` (0/1) and ``release_date`` (for example the Spotify hit-predictor
CSVs, ``conf/spotify-hit-predictor.yaml``) becomes labelled examples split by time: tracks released from
``labelled.test_from`` on are the test split, earlier ones train (a fixed ``labelled.validation_share``
percent by ``track_id`` hash is the validation split that picks the threshold). The Keras model of
``cfg.train.variant`` (the structured branch, or fused with audio when the catalog has spectrograms) is
trained by the same distributed trainer as the demo model, beside the Spark MLlib GBT baseline on the same
inputs, and both are reported like the demo's evaluation (metrics, plots, breakdowns).

Point-in-time artist history (``labelled.artist_history``): for each track, the artist's tracks and hits of
*earlier* release periods (``labelled.period_years``) only, so a track never sees its own label, the labels
of its own period or anything later.
"""
from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.errors import InputContractError, TableMissingError
from hitcast.evaluation.ablations import ModelResult, assess, eval_rows, gbt_result
from hitcast.metrics import binary_metrics
from hitcast.evaluation.report import write_report
from hitcast.evaluation.suite import EvaluationSummary, Trained
from hitcast.model.spec import DEFAULT_SPEC
from hitcast.model.bundle import load_bundle
from hitcast.model.training import train_model
from hitcast.schemas import AUDIO_FEATURES, TRACK_STRUCTURE
from hitcast.tables import fingerprint, read_table, table_version

log = logging.getLogger(__name__)

#: Numeric contract columns a labelled catalog may carry (``labelled.features: []`` uses those with values).
CANDIDATES = [*AUDIO_FEATURES, "duration_ms", "explicit", *TRACK_STRUCTURE]
#: The artist-history features.
ARTIST_HISTORY = ["artist_prev_tracks", "artist_prev_hits", "artist_prev_hit_rate"]
INGEST_HINT = "run jobs/ingest.py with the same --conf first"


def read_catalog(spark: SparkSession, cfg: Config) -> DataFrame:
    """The ingested ``catalog`` table (:data:`hitcast.schemas.CATALOG`) with its labels.

    Raises
    ------
    TableMissingError
        When the table is absent, saying which ingest run creates it.
    InputContractError
        When it lacks ``known_label`` or ``release_date``.
    """
    try:
        catalog = read_table(spark, cfg, "catalog")
    except TableMissingError as exc:
        raise TableMissingError(f"{exc}: a labelled evaluation reads the ingested catalog; {INGEST_HINT}") from exc
    missing = [c for c in ["known_label", "release_date"] if c not in catalog.columns]
    if missing:
        raise InputContractError(f"catalog table at {cfg.table('catalog')} has no column {missing[0]}: a labelled "
                                 f"evaluation needs known_label (0/1) and release_date; {INGEST_HINT}")
    return catalog


def model_features(catalog: DataFrame, configured: list[str]) -> list[str]:
    """``configured``, or every :data:`CANDIDATES` column of ``catalog`` that has a value in some row.

    Raises
    ------
    InputContractError
        When a configured column is not in the catalog, or no numeric column has values.
    """
    if configured:
        absent = [c for c in configured if c not in catalog.columns]
        if absent:
            raise InputContractError(f"labelled.features: {absent} not in the catalog (columns: {catalog.columns})")
        return list(configured)
    present = [c for c in CANDIDATES if c in catalog.columns]
    counts = catalog.agg(*[F.count(c).alias(c) for c in present]).first() if present else {}
    found = [c for c in present if counts[c]]
    if not found:
        raise InputContractError(f"the catalog has no numeric feature with values (looked for {CANDIDATES})")
    return found


def artist_history(catalog: DataFrame, *, period_years: int) -> DataFrame:
    """Each track's artist history from earlier release periods only.

    Parameters
    ----------
    catalog : DataFrame
        ``track_id``, ``artist_id``, ``artist_name``, ``release_date``, ``known_label``.
    period_years : int
        Release periods are ``floor(year / period_years)``; a track counts the artist's tracks of strictly
        earlier periods (same artist: ``artist_id``, else the trimmed, lower-cased ``artist_name``).

    Returns
    -------
    DataFrame
        ``track_id``, ``artist_prev_tracks`` (0 when none), ``artist_prev_hits`` (labelled hits among them),
        ``artist_prev_hit_rate`` (hits / labelled earlier tracks; NULL when none is labelled), all double;
        NULL for a track without an artist or a release date.
    """
    key = F.coalesce(F.col("artist_id"), F.lower(F.trim(F.col("artist_name"))))
    tracks = (catalog.where(F.col("release_date").isNotNull())
              .select("track_id", key.alias("artist_key"),
                      F.floor(F.year("release_date") / period_years).alias("period"), "known_label")
              .where(F.col("artist_key").isNotNull()))
    per = tracks.groupBy("artist_key", "period").agg(
        F.count("*").alias("n"), F.count(F.when(F.col("known_label").isin(0, 1), 1)).alias("labelled"),
        F.sum(F.when(F.col("known_label") == 1, 1).otherwise(0)).alias("hits"))
    earlier = Window.partitionBy("artist_key").orderBy("period").rowsBetween(Window.unboundedPreceding, -1)
    prev = per.select("artist_key", "period",
                      *[F.coalesce(F.sum(c).over(earlier), F.lit(0)).alias(f"prev_{c}")
                        for c in ("n", "labelled", "hits")])
    return tracks.join(prev, ["artist_key", "period"]).select(
        "track_id", F.col("prev_n").cast("double").alias("artist_prev_tracks"),
        F.col("prev_hits").cast("double").alias("artist_prev_hits"),
        F.when(F.col("prev_labelled") > 0, F.col("prev_hits") / F.col("prev_labelled")).alias("artist_prev_hit_rate"))


def as_examples(catalog: DataFrame, *, features: list[str], test_from: int, validation_share: int,
                history: DataFrame | None = None) -> DataFrame:
    """Labelled catalog rows shaped as ``training_examples``, split by release year.

    Parameters
    ----------
    catalog : DataFrame
        :data:`hitcast.schemas.CATALOG` rows, unique on ``track_id``; rows without ``known_label`` (0/1)
        or ``release_date`` are left out.
    features : list of str
        Numeric catalog columns, cast to double.
    test_from : int
        First release year of the test split.
    validation_share : int
        Percent of the earlier tracks, by ``xxhash64(track_id) % 100``, in the validation split.
    history : DataFrame, optional
        :func:`artist_history` rows, joined on ``track_id``.

    Returns
    -------
    DataFrame
        ``track_id``, ``cutoff`` (the release date), ``split`` (``test`` from ``test_from``; else
        ``validation`` or ``train``), ``genre``, ``release_date``, ``cold_start`` (False), ``is_hit``
        (``known_label``), ``popularity`` (NULL), the ``features`` and, with ``history``,
        :data:`ARTIST_HISTORY`.
    """
    labelled = catalog.where(F.col("track_id").isNotNull() & F.col("known_label").isin(0, 1)
                             & F.col("release_date").isNotNull())
    split = (F.when(F.year("release_date") >= test_from, "test")
             .when(F.pmod(F.xxhash64("track_id"), F.lit(100)) < validation_share, "validation").otherwise("train"))
    out = labelled.select("track_id", F.col("release_date").alias("cutoff"), split.alias("split"),
                          F.col("genre").cast("string").alias("genre"), "release_date",
                          F.lit(False).alias("cold_start"), F.col("known_label").cast("int").alias("is_hit"),
                          F.lit(None).cast("double").alias("popularity"),
                          *[F.col(c).cast("double").alias(c) for c in features])
    return out if history is None else out.join(history, "track_id", "left")


def result_note(r: ModelResult, reference: dict[str, float]) -> str:
    """One report line: test F1 at the validation threshold and at 0.5, ROC-AUC (against the reference)."""
    def vs(key: str) -> str:
        return f" ({r.metrics[key] - reference[key]:+.3f} vs reference)" if key in reference else ""

    at_half = binary_metrics(r.test["is_hit"].to_numpy(), r.test["p"].to_numpy(), 0.5)["f1"]
    return (f"{r.name}: F1 {r.metrics['f1']:.3f}{vs('f1')} at the validation threshold {r.threshold:.3f}, "
            f"F1 {at_half:.3f} at 0.5; ROC-AUC {r.metrics['roc_auc']:.3f}{vs('roc_auc')}")


def run_labelled(spark: SparkSession, cfg: Config) -> EvaluationSummary:
    """Train and evaluate ``cfg.train.variant`` and the GBT on the ingested labelled catalog, split by
    release year (``cfg.labelled``); write ``paths.reports/labelled/report.md``.

    Returns
    -------
    EvaluationSummary
        The report path, ``results`` = [the Keras model, the GBT] and the report's notes.
    """
    lab = cfg.labelled
    catalog = read_catalog(spark, cfg)
    features = model_features(catalog, list(lab.features))
    history = artist_history(catalog, period_years=lab.period_years) if lab.artist_history else None
    examples = as_examples(catalog, features=features, test_from=lab.test_from,
                           validation_share=lab.validation_share, history=history).cache()
    counts = {r["split"]: r["count"] for r in examples.groupBy("split").count().collect()}
    n_catalog = catalog.count()
    log.info("labelled catalog: %d tracks, %d labelled; splits %s; features %s%s", n_catalog, sum(counts.values()),
             counts, features, " + artist history" if history is not None else "")
    variant = cfg.train.variant
    spectrograms = read_table(spark, cfg, "spectrograms") if DEFAULT_SPEC.for_variant(variant).uses_audio else None
    location = cfg.table("catalog")
    inputs = {"catalog": {"location": location, "delta_version": table_version(spark, location),
                          "fingerprint": fingerprint(examples)}}
    history_tag = "history" if history is not None else "nohistory"
    out = train_model(spark, cfg, examples, spectrograms=spectrograms, inputs=inputs, variant=variant,
                      version_prefix=f"labelled-{variant}-{history_tag}")
    rows = eval_rows(examples, spectrograms)
    bundle = load_bundle(out.path)
    keras_res = assess(f"keras {variant}", out.version, rows=rows,
                       p=bundle.predict_pandas(rows)["hit_probability"].to_numpy(),
                       min_group_rows=cfg.evaluate.min_group_rows, threshold_rule=cfg.train.threshold)
    results = [keras_res, gbt_result(cfg, examples, rows)]
    test_years = f"released from {lab.test_from}"
    notes = [f"data: the ingested catalog at {location}, {n_catalog} tracks, {sum(counts.values())} labelled: "
             f"train {counts.get('train', 0)} + validation {counts.get('validation', 0)} (released before "
             f"{lab.test_from}), test {counts.get('test', 0)} ({test_years})",
             f"inputs: {', '.join(features)}"
             + (f"; artist history from earlier {lab.period_years}-year periods ({', '.join(ARTIST_HISTORY)})"
                if history is not None else "; no artist history"),
             *(["reference (labelled.reference): " + ", ".join(f"{k} {v:.3f}" for k, v in lab.reference.items())]
               if lab.reference else []),
             *[result_note(r, lab.reference) for r in results]]
    for n in notes:
        log.info("%s", n)
    report = write_report(results, cfg.path(cfg.paths.reports) / "labelled",
                          title=f"hitcast: {variant} model on a labelled catalog (time split at {lab.test_from})",
                          notes=notes, bins=cfg.evaluate.calibration_bins)
    examples.unpersist()
    return EvaluationSummary(report, results, notes=notes, trained=[Trained(out, inputs, "candidate", keras_res)])
