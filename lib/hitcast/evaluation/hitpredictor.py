"""Real data: the structured branch alone on the Spotify hit-predictor dataset, with a time split.

The data is ``../shared/data/spotify-hit-predictor/dataset-of-{60,70,80,90,00,10}s.csv``: Spotify's audio
features per track and ``target`` (1 = on the Billboard Hot-100). It is read once, by ingest, with
``conf/spotify-hit-predictor.yaml`` (``uri`` -> ``track_id``, ``target`` -> ``known_label``, the decade ->
``release_date``; one row per ``track_id``, see :mod:`hitcast.ingest.catalog`); this module builds its
examples from that ``catalog`` table. Tracks released before 2010 train (a fixed 10 % by ``track_id`` hash
is the validation split that picks the threshold), the 2010s are the test split. The Keras ``tabular``
variant is trained with ``cfg.train`` by the same distributed trainer as the demo model, beside the Spark
MLlib GBT; the reference figures (scikit-learn, same split) are F1 0.81 / ROC-AUC 0.87.
"""
from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.errors import InputContractError, TableMissingError
from hitcast.evaluation.ablations import ModelResult, assess, eval_rows, gbt_result
from hitcast.evaluation.metrics import binary_metrics
from hitcast.evaluation.report import write_report
from hitcast.evaluation.suite import EvaluationSummary
from hitcast.model.bundle import load_bundle
from hitcast.model.registry import fingerprint
from hitcast.model.training import train_model
from hitcast.tables import read_table, table_version

log = logging.getLogger(__name__)

#: Spotify's audio features and track structure (catalog columns): the model inputs.
NUMERIC = ["danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness", "instrumentalness",
           "liveness", "valence", "tempo", "duration_ms", "time_signature", "chorus_hit", "sections"]
REFERENCE = {"f1": 0.81, "roc_auc": 0.87}
INGEST_HINT = "run jobs/ingest.py --conf conf/spotify-hit-predictor.yaml first"


def read_catalog(spark: SparkSession, cfg: Config) -> DataFrame:
    """The ingested ``catalog`` table (:data:`hitcast.schemas.CATALOG`) holding the hit-predictor data.

    Raises
    ------
    TableMissingError
        When the table is absent, saying which ingest run creates it.
    InputContractError
        When it lacks ``known_label``, ``release_date`` or a :data:`NUMERIC` column.
    """
    try:
        catalog = read_table(spark, cfg, "catalog")
    except TableMissingError as exc:
        raise TableMissingError(f"{exc}: the hit-predictor evaluation reads the ingested Spotify catalog; "
                                f"{INGEST_HINT}") from exc
    missing = [c for c in ["known_label", "release_date", *NUMERIC] if c not in catalog.columns]
    if missing:
        raise InputContractError(f"catalog table at {cfg.table('catalog')} has no column {missing[0]} "
                                 f"(missing: {', '.join(missing)}); it predates the input contract's "
                                 f"{missing[0]}: remove it and {INGEST_HINT}")
    return catalog


def as_examples(catalog: DataFrame, *, test_from: int = 2010, validation_share: int = 10) -> DataFrame:
    """Labelled catalog rows shaped as ``training_examples``, split by release year.

    Parameters
    ----------
    catalog : DataFrame
        :data:`hitcast.schemas.CATALOG` rows, unique on ``track_id``; rows without ``known_label`` (0/1)
        or ``release_date`` are left out.
    test_from : int
        First release year of the test split.
    validation_share : int
        Percent of the earlier tracks, by ``xxhash64(track_id) % 100``, in the validation split.

    Returns
    -------
    DataFrame
        ``track_id``, ``cutoff`` (the release date), ``split`` (``test`` from ``test_from``; else
        ``validation`` or ``train``), ``genre``, ``release_date``, ``cold_start`` (False), ``is_hit``
        (``known_label``), ``popularity`` (NULL) and the :data:`NUMERIC` features as doubles.
    """
    labelled = catalog.where(F.col("track_id").isNotNull() & F.col("known_label").isin(0, 1)
                             & F.col("release_date").isNotNull())
    split = (F.when(F.year("release_date") >= test_from, "test")
             .when(F.pmod(F.xxhash64("track_id"), F.lit(100)) < validation_share, "validation").otherwise("train"))
    return labelled.select("track_id", F.col("release_date").alias("cutoff"), split.alias("split"),
                           F.col("genre").cast("string").alias("genre"), "release_date",
                           F.lit(False).alias("cold_start"), F.col("known_label").cast("int").alias("is_hit"),
                           F.lit(None).cast("double").alias("popularity"),
                           *[F.col(c).cast("double").alias(c) for c in NUMERIC])


def result_note(r: ModelResult) -> str:
    """One report line: test F1 at the validation threshold and at 0.5, ROC-AUC, both against the reference."""
    at_half = binary_metrics(r.test["is_hit"].to_numpy(), r.test["p"].to_numpy(), 0.5)["f1"]
    return (f"{r.name}: F1 {r.metrics['f1']:.3f} ({r.metrics['f1'] - REFERENCE['f1']:+.3f} vs reference) "
            f"at the validation threshold {r.threshold:.3f}, F1 {at_half:.3f} at 0.5; "
            f"ROC-AUC {r.metrics['roc_auc']:.3f} ({r.metrics['roc_auc'] - REFERENCE['roc_auc']:+.3f})")


def run_hit_predictor(spark: SparkSession, cfg: Config) -> EvaluationSummary:
    """Train and evaluate the structured branch (``cfg.train``, variant ``tabular``) and the GBT on the
    ingested hit-predictor catalog; write ``paths.reports/hit-predictor/report.md``.

    Returns
    -------
    EvaluationSummary
        The report path, ``results`` = [keras tabular, gbt] and the report's notes.
    """
    catalog = read_catalog(spark, cfg)
    examples = as_examples(catalog).cache()
    counts = {r["split"]: r["count"] for r in examples.groupBy("split").count().collect()}
    n_catalog = catalog.count()
    log.info("hit predictor: %d catalog tracks, %d labelled; splits %s", n_catalog, sum(counts.values()), counts)
    location = cfg.table("catalog")
    inputs = {"catalog": {"location": location, "delta_version": table_version(spark, location),
                          "fingerprint": fingerprint(examples)}}
    out = train_model(spark, cfg, examples, spectrograms=None, inputs=inputs, variant="tabular",
                      version_prefix="hitpredictor-tabular")
    rows = eval_rows(examples, None)
    bundle = load_bundle(out.path)
    keras_res = assess("keras tabular", out.version, rows=rows,
                       p=bundle.predict_pandas(rows)["hit_probability"].to_numpy(),
                       min_group_rows=cfg.evaluate.min_group_rows)
    results = [keras_res, gbt_result(cfg, examples, rows)]
    notes = [f"data: the ingested catalog at {location}, {n_catalog} tracks (one per Spotify uri), "
             f"{sum(counts.values())} labelled: train {counts.get('train', 0)} + validation "
             f"{counts.get('validation', 0)} (1960s-2000s), test {counts.get('test', 0)} (2010s)",
             f"reference (scikit-learn GBT/RF, same time split): F1 {REFERENCE['f1']:.2f}, "
             f"ROC-AUC {REFERENCE['roc_auc']:.2f}",
             *[result_note(r) for r in results]]
    for n in notes:
        log.info("%s", n)
    report = write_report(results, cfg.path(cfg.paths.reports) / "hit-predictor",
                          title="hitcast: structured branch on the Spotify hit-predictor data (time split)", notes=notes,
                          bins=cfg.evaluate.calibration_bins)
    examples.unpersist()
    return EvaluationSummary(report, results, notes=notes)
