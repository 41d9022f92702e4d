"""Real data: the structured branch alone on the Spotify hit-predictor dataset, with a time split.

``../shared/data/spotify-hit-predictor/dataset-of-{60,70,80,90,00,10}s.csv``: Spotify's audio features per
track and ``target`` (1 = on the Billboard Hot-100). Rows are de-duplicated on ``uri`` (546 appear in
more than one decade file; the earliest decade is kept), the 1960s-2000s train (a fixed 10 % by ``uri``
hash is the validation split that picks the threshold) and the 2010s are the test split. The Keras
``tabular`` variant is trained with the same distributed trainer as the demo model, beside the Spark
MLlib GBT; the reference figures (scikit-learn, same split) are F1 0.81 / ROC-AUC 0.87.
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType

from hitcast.config import Config
from hitcast.errors import InputContractError
from hitcast.evaluation.ablations import ModelResult, assess, eval_rows, gbt_result
from hitcast.evaluation.metrics import f1_at
from hitcast.evaluation.report import write_report
from hitcast.model.bundle import load_bundle
from hitcast.model.registry import fingerprint
from hitcast.model.training import train_model

log = logging.getLogger(__name__)

#: Spotify's audio features and track structure: the model inputs.
NUMERIC = ["danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness", "instrumentalness",
           "liveness", "valence", "tempo", "duration_ms", "time_signature", "chorus_hit", "sections"]
CSV_SCHEMA = StructType([StructField("track", StringType()), StructField("artist", StringType()),
                         StructField("uri", StringType()),
                         *[StructField(c, DoubleType()) for c in NUMERIC],
                         StructField("target", IntegerType()), StructField("decade", IntegerType())])
REFERENCE = {"f1": 0.81, "roc_auc": 0.87}


def read_hit_predictor(spark: SparkSession, folder: Path) -> DataFrame:
    """The six CSVs with an explicit schema (header skipped); malformed lines are dropped by mode DROPMALFORMED.

    Raises
    ------
    InputContractError
        When ``folder`` holds no ``dataset-of-*.csv``.
    """
    files = sorted(str(p) for p in Path(folder).glob("dataset-of-*.csv"))
    if not files:
        raise InputContractError(f"no dataset-of-*.csv files in {folder} (evaluate.hit_predictor_dir)")
    return spark.read.csv(files, schema=CSV_SCHEMA, header=True, mode="DROPMALFORMED")


def as_examples(raw: DataFrame, test_from: int = 2010, validation_share: int = 10) -> DataFrame:
    """De-duplicate on ``uri`` and shape as ``training_examples`` (labels, ids, split by decade).

    Returns
    -------
    DataFrame
        ``track_id`` (uri), ``cutoff`` (1 January of the decade), ``split`` (``test`` from ``test_from``;
        else ``validation`` for ``xxhash64(uri) % 100 < validation_share``, else ``train``), ``genre`` (NULL),
        ``release_date``, ``cold_start`` (False), ``is_hit`` (target), ``popularity`` (NULL) and the
        :data:`NUMERIC` features.
    """
    first = Window.partitionBy("uri").orderBy("decade", "track", "artist")
    dedup = (raw.where(F.col("uri").isNotNull() & F.col("target").isNotNull() & F.col("decade").isNotNull())
             .withColumn("_n", F.row_number().over(first)).where("_n = 1").drop("_n"))
    date = F.make_date(F.col("decade"), F.lit(1), F.lit(1))
    split = (F.when(F.col("decade") >= test_from, "test")
             .when(F.pmod(F.xxhash64("uri"), F.lit(100)) < validation_share, "validation").otherwise("train"))
    return dedup.select(F.col("uri").alias("track_id"), date.alias("cutoff"), split.alias("split"),
                        F.lit(None).cast("string").alias("genre"), date.alias("release_date"),
                        F.lit(False).alias("cold_start"), F.col("target").alias("is_hit"),
                        F.lit(None).cast("double").alias("popularity"), *NUMERIC)


def run_hit_predictor(spark: SparkSession, cfg: Config) -> tuple[Path, list[ModelResult]]:
    """Train and evaluate the structured branch (and GBT) on the hit-predictor data; write the report.

    Returns
    -------
    (report path, [keras tabular result, gbt result])
    """
    folder = cfg.path(cfg.evaluate.hit_predictor_dir)
    raw = read_hit_predictor(spark, folder)
    examples = as_examples(raw).cache()
    counts = {r["split"]: r["count"] for r in examples.groupBy("split").count().collect()}
    raw_rows = raw.count()
    log.info("hit predictor: %d CSV rows, %d after de-duplication on uri; splits %s", raw_rows,
             sum(counts.values()), counts)
    hp = copy.deepcopy(cfg)
    hp.train.popularity_head = False
    hp.train.epochs = cfg.evaluate.hit_predictor_epochs
    hp.train.batch_size = cfg.evaluate.hit_predictor_batch_size
    hp.train.dense_units = cfg.evaluate.hit_predictor_dense_units
    hp.train.dropout = cfg.evaluate.hit_predictor_dropout
    hp.train.learning_rate = cfg.evaluate.hit_predictor_learning_rate
    hp.train.log1p_min_skew = cfg.evaluate.hit_predictor_log1p_min_skew
    hp.train.scaling = cfg.evaluate.hit_predictor_scaling
    inputs = {"hit_predictor_csv": {"location": str(folder), "fingerprint": fingerprint(raw)}}
    out = train_model(spark, hp, examples, None, inputs, "tabular", version_prefix="hitpredictor-tabular")
    rows = eval_rows(examples, None)
    bundle = load_bundle(out.path)
    keras_res = assess("keras tabular", out.version, rows, bundle.predict_pandas(rows)["hit_probability"].to_numpy(),
                       cfg.evaluate.min_group_rows)
    results = [keras_res, gbt_result(hp, examples, rows)]
    notes = [f"data: {folder.name}, {raw_rows} rows, {sum(counts.values())} after de-duplicating on uri; "
             f"train {counts.get('train', 0)} + validation {counts.get('validation', 0)} (1960s-2000s), "
             f"test {counts.get('test', 0)} (2010s)",
             f"reference (scikit-learn GBT/RF, same time split): F1 {REFERENCE['f1']:.2f}, "
             f"ROC-AUC {REFERENCE['roc_auc']:.2f}"]
    for r in results:
        at_half = f1_at(r.test["is_hit"].to_numpy(), r.test["p"].to_numpy(), 0.5)
        notes.append(f"{r.name}: F1 {r.metrics['f1']:.3f} ({r.metrics['f1'] - REFERENCE['f1']:+.3f} vs reference) "
                     f"at the validation threshold {r.threshold:.3f}, F1 {at_half:.3f} at 0.5; "
                     f"ROC-AUC {r.metrics['roc_auc']:.3f} ({r.metrics['roc_auc'] - REFERENCE['roc_auc']:+.3f})")
    for n in notes:
        log.info("%s", n)
    report = write_report(results, cfg.path(cfg.paths.reports) / "hit-predictor",
                          "hitcast: structured branch on the Spotify hit-predictor data (time split)", notes,
                          cfg.evaluate.calibration_bins)
    examples.unpersist()
    return report, results
