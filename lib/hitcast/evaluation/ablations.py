"""Ablations on the time-split test set: each Keras variant (and the GBT baseline) trained the same way,
its threshold chosen on validation, its metrics on test overall and per genre, release period and cold start."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.metrics import binary_metrics, choose_threshold, grouped_metrics, release_period
from hitcast.model.bundle import load_bundle
from hitcast.model.dataset import join_groups, join_spectrograms
from hitcast.model.spec import DEFAULT_SPEC
from hitcast.model.tabular import TabularStats, compute_stats, feature_columns
from hitcast.model.training import TrainOutcome, train_model

log = logging.getLogger(__name__)

KEY = ["track_id", "cutoff"]


@dataclass
class ModelResult:
    """One model's evaluation.

    Attributes
    ----------
    test : pandas.DataFrame
        Test rows: ``track_id, cutoff, genre, period, cold_start, is_hit, p``.
    metrics : dict
        :func:`binary_metrics` on all test rows at ``threshold`` (chosen on validation).
    breakdown : dict of str -> pandas.DataFrame
        ``genre``, ``period``, ``cold_start``: :func:`grouped_metrics` tables.
    """

    name: str
    version: str
    threshold: float
    test: pd.DataFrame
    metrics: dict[str, Any]
    breakdown: dict[str, pd.DataFrame] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)


def eval_rows(examples: DataFrame, spectrograms: DataFrame | None,
              splits: tuple[str, ...] = ("validation", "test"),
              sources: Mapping[str, DataFrame] | None = None) -> pd.DataFrame:
    """Labelled validation and test examples with their spectrograms and the columns of every other input
    group of :data:`hitcast.model.spec.DEFAULT_SPEC` (from ``sources``, :func:`hitcast.scoring.inputs.group_sources`),
    as pandas (what the bundles of every variant score).

    Adds ``cutoff`` as ISO string and ``period`` (release quarter).
    """
    labelled = examples.where(F.col("split").isin(*splits) & F.col("is_hit").isin(0, 1))
    pdf = join_groups(join_spectrograms(labelled, spectrograms), DEFAULT_SPEC, sources or {}).toPandas()
    pdf["cutoff"] = pdf["cutoff"].astype(str)
    pdf["period"] = release_period(pdf["release_date"]) if "release_date" in pdf else "unknown"
    return pdf


def assess(name: str, version: str, *, rows: pd.DataFrame, p: np.ndarray, min_group_rows: int,
           threshold_rule: str) -> ModelResult:
    """Threshold on the validation rows (by ``threshold_rule``, see ``train.threshold``), metrics on the
    test rows of ``rows`` scored ``p``."""
    df = rows.assign(p=np.asarray(p, dtype=np.float64))
    val, test = df[df["split"] == "validation"], df[df["split"] == "test"]
    threshold = choose_threshold(val["is_hit"].to_numpy(), val["p"].to_numpy(), threshold_rule) if len(val) else 0.5
    cols = [c for c in ("track_id", "cutoff", "genre", "period", "cold_start", "is_hit", "p") if c in test]
    test = test[cols].reset_index(drop=True)
    result = ModelResult(name, version, threshold, test,
                         binary_metrics(test["is_hit"].to_numpy(), test["p"].to_numpy(), threshold),
                         validation=binary_metrics(val["is_hit"].to_numpy(), val["p"].to_numpy(), threshold)
                         if len(val) else {})
    for by in ("genre", "period", "cold_start"):
        if by in test:
            result.breakdown[by] = grouped_metrics(test.fillna({by: "unknown"}), by, threshold,
                                                   min_rows=1 if by == "cold_start" else min_group_rows)
    m = result.metrics
    log.info("%s (%s): test F1 %.3f, ROC-AUC %.3f, PR-AUC %.3f, Brier %.3f at threshold %.3f", name, version,
             m["f1"], m["roc_auc"], m["pr_auc"], m["brier"], threshold)
    return result


def keras_result(spark: SparkSession, cfg: Config, examples: DataFrame, *, spectrograms: DataFrame | None,
                 inputs: dict[str, Any], variant: str, rows: pd.DataFrame,
                 sources: Mapping[str, DataFrame] | None = None) -> tuple[ModelResult, TrainOutcome]:
    """Train (or reuse) the ``variant`` model version (the subset of the groups of
    :data:`hitcast.model.spec.DEFAULT_SPEC` it names, read from their ``sources``) and assess it on ``rows``;
    returns the assessment and the training outcome (the lifecycle registers it: a variant other than
    ``train.variant`` is an ablation, never scored by default)."""
    out = train_model(spark, cfg, examples, spectrograms=spectrograms, inputs=inputs, variant=variant,
                      spec=DEFAULT_SPEC, sources=sources)
    bundle = load_bundle(out.path)
    p = bundle.predict_pandas(rows)["hit_probability"].to_numpy()
    return assess(variant, out.version, rows=rows, p=p, min_group_rows=cfg.evaluate.min_group_rows,
                  threshold_rule=cfg.train.threshold), out


def gbt_result(cfg: Config, examples: DataFrame, rows: pd.DataFrame, *, name: str = "gbt") -> ModelResult:
    """The Spark MLlib GBT baseline on the tabular inputs (every numeric column of ``examples``), assessed
    like the Keras models and reported as ``name``."""
    from hitcast.evaluation.baselines import gbt_scores

    feats = feature_columns(examples)
    stats: TabularStats = compute_stats(examples.where(F.col("split") == "train"), feats, n_mels=1, n_frames=1)
    scores = gbt_scores(examples.where(F.col("split").isin("train", "validation", "test")), stats,
                        iterations=cfg.evaluate.gbt_iterations, max_depth=cfg.evaluate.gbt_max_depth, seed=cfg.train.seed)
    merged = rows.merge(scores[KEY + ["p"]], on=KEY, how="left")
    if merged["p"].isna().any():
        log.warning("GBT scored %d of %d rows", int(merged["p"].notna().sum()), len(merged))
    return assess(name, f"spark-mllib-gbt-{cfg.evaluate.gbt_iterations}x{cfg.evaluate.gbt_max_depth}",
                  rows=merged.drop(columns=["p"]), p=merged["p"].fillna(0.0).to_numpy(), min_group_rows=cfg.evaluate.min_group_rows,
                  threshold_rule=cfg.train.threshold)
