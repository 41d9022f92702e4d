"""The evaluation stage recorded: every model version an evaluation trained or reused is registered (its
MLflow run, the ``models`` mirror), with its test figures and the report and plots as run artifacts."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pandas as pd
from pyspark.sql import SparkSession

from hitcast.config import Config
from hitcast.evaluation.suite import EvaluationSummary, Trained, evaluate_catalog
from hitcast.lifecycle import registry
from hitcast.lifecycle.training import register_outcome

log = logging.getLogger(__name__)


def test_figures(trained: Trained, evaluated_at: dt.datetime) -> dict[str, Any]:
    """The figures ``models.test_metrics`` and the MLflow run keep: every test metric of the assessment,
    its threshold (chosen on validation), the number of test rows and when."""
    figures: dict[str, Any] = {k: float(v) for k, v in trained.result.metrics.items()
                               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    figures.update(threshold=float(trained.result.threshold), rows=int(len(trained.result.test)),
                   evaluated_at=evaluated_at.isoformat(sep=" ", timespec="seconds"))
    return figures


def record(spark: SparkSession, cfg: Config, summary: EvaluationSummary) -> None:
    """Register every version of ``summary.trained`` (with its role unless it has one) and store its test
    figures, with the report folder's files as artifacts of its run."""
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    artifacts = sorted(p for p in summary.report.parent.iterdir() if p.is_file())
    for t in summary.trained:
        register_outcome(spark, cfg, t.outcome, inputs=t.inputs, role=t.role,
                         reason="evaluation ablation" if t.role == "ablation" else "trained by the evaluation")
        if t.role == "ablation":
            current = registry.model_role(spark, cfg, t.outcome.version)
            if current == "candidate":
                registry.set_role(spark, cfg, t.outcome.version, "ablation", reason="evaluation ablation")
        registry.record_test_figures(spark, cfg, t.outcome.version, test_figures(t, now), artifacts)
        log.info("recorded the test figures of %s (%s) in the models table and its MLflow run", t.outcome.version,
                 t.role)


def evaluate_and_record(spark: SparkSession, cfg: Config, *, truth: pd.DataFrame | None,
                        truth_reason: str) -> EvaluationSummary:
    """:func:`hitcast.evaluation.suite.evaluate_catalog`, then :func:`record`."""
    summary = evaluate_catalog(spark, cfg, truth=truth, truth_reason=truth_reason)
    record(spark, cfg, summary)
    return summary


def labelled_and_record(spark: SparkSession, cfg: Config) -> EvaluationSummary:
    """:func:`hitcast.evaluation.labelled.run_labelled`, then :func:`record`."""
    from hitcast.evaluation.labelled import run_labelled

    summary = run_labelled(spark, cfg)
    record(spark, cfg, summary)
    return summary
