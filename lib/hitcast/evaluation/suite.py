"""The demo evaluation end to end: primary model, ablations, GBT baseline, ground-truth limit, report."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import SparkSession

from hitcast.config import Config
from hitcast.evaluation.ablations import ModelResult, eval_rows, gbt_result, keras_result
from hitcast.evaluation.limit import oracle_result, truth_result
from hitcast.metrics import f1_top_share, fmt
from hitcast.evaluation.report import write_report
from hitcast.model.training import TrainOutcome, table_inputs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trained:
    """A model version an evaluation trained or reused, for the lifecycle to register: its training outcome,
    the lineage of its inputs, the role a new version gets, and its assessment."""

    outcome: TrainOutcome
    inputs: dict[str, Any]
    role: str
    result: ModelResult


@dataclass
class EvaluationSummary:
    """What :func:`evaluate_catalog` found; ``results[0]`` is the primary (configured) variant."""

    report: Path
    results: list[ModelResult]
    limit: ModelResult | None = None
    notes: list[str] = field(default_factory=list)
    trained: list[Trained] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{r.name:<12} F1 {r.metrics['f1']:.3f}  ROC-AUC {r.metrics['roc_auc']:.3f}  PR-AUC "
                 f"{r.metrics['pr_auc']:.3f}  Brier {r.metrics['brier']:.3f}"
                 for r in self.results + ([self.limit] if self.limit else [])]
        return "\n".join([f"evaluation report: {self.report}", *lines])


def comparison_notes(results: list[ModelResult], limit: ModelResult | None, *, limit_reason: str,
                     oracle: ModelResult | None = None) -> list[str]:
    """Plain-language findings: who wins on F1 / ROC-AUC, and the gap to the ground-truth limit (and how
    much of it a GBT handed the true latents closes)."""
    primary, notes = results[0], []
    for other in results[1:]:
        f1_ok = primary.metrics["f1"] > other.metrics["f1"]
        auc_ok = primary.metrics["roc_auc"] > other.metrics["roc_auc"]
        notes.append(f"{primary.name} vs {other.name}: F1 {fmt(primary.metrics['f1'])} vs {fmt(other.metrics['f1'])}, "
                     f"ROC-AUC {fmt(primary.metrics['roc_auc'])} vs {fmt(other.metrics['roc_auc'])}: "
                     f"{primary.name} {'wins on both' if f1_ok and auc_ok else 'does NOT win on both'}")
    if limit is not None:
        gap = 100 * (limit.metrics["f1"] - primary.metrics["f1"])
        notes.append(f"limit: the generator's true probabilities reach test F1 {fmt(limit.metrics['f1'])} "
                     f"(ROC-AUC {fmt(limit.metrics['roc_auc'])}); {primary.name} is {gap:.1f} F1 points below it "
                     f"({'within' if gap <= 5 else 'more than'} 5 points)")
        if oracle is not None:
            notes.append(f"learnable: a GBT trained on the same rows with the generator's latent values as extra "
                         f"inputs reaches F1 {fmt(oracle.metrics['f1'])} (ROC-AUC {fmt(oracle.metrics['roc_auc'])}), "
                         f"{100 * (limit.metrics['f1'] - oracle.metrics['f1']):.1f} points below the limit: that "
                         f"part of the gap is what this many training rows cannot teach")
        if "f1_top_share" in limit.metrics and "f1_top_share" in primary.metrics:
            share_gap = 100 * (limit.metrics["f1_top_share"] - primary.metrics["f1_top_share"])
            notes.append(f"top share (each cutoff's top hit_share flagged, no threshold): {primary.name} F1 "
                         f"{fmt(primary.metrics['f1_top_share'])} vs the limit's "
                         f"{fmt(limit.metrics['f1_top_share'])}, {share_gap:.1f} points below it")
    else:
        notes.append(f"limit: skipped: {limit_reason}")
    return notes


def evaluate_catalog(spark: SparkSession, cfg: Config, *, truth: pd.DataFrame | None,
                     truth_reason: str) -> EvaluationSummary:
    """Evaluate the configured variant, its ablations and baselines on the test split; write the report.

    Model versions that already exist (e.g. the one ``jobs/train.py`` made) are reused, not retrained; the
    summary's ``trained`` lists them for the lifecycle to register (:mod:`hitcast.lifecycle.evaluation`).

    Parameters
    ----------
    truth : pandas.DataFrame or None
        The demo generator's ground truth (``track_id``, ``cutoff``, ``true_hit_probability``, latents), for
        the limit and the oracle; ``None`` skips them for ``truth_reason``.
    """
    from hitcast.model.spec import DEFAULT_SPEC
    from hitcast.model.dataset import group_sources

    examples, spectrograms, inputs = table_inputs(spark, cfg)
    sources = group_sources(spark, cfg, DEFAULT_SPEC)
    rows = eval_rows(examples, spectrograms, sources=sources)
    log.info("evaluation rows: %d validation, %d test", int((rows["split"] == "validation").sum()),
             int((rows["split"] == "test").sum()))
    variants = [cfg.train.variant] + [v for v in cfg.evaluate.ablations if v != cfg.train.variant]
    assessed = [keras_result(spark, cfg, examples, spectrograms=spectrograms, inputs=inputs, variant=v,
                             rows=rows, sources=sources) for v in variants]
    trained = [Trained(out, inputs, "candidate" if out.variant == cfg.train.variant else "ablation", res)
               for res, out in assessed]
    results = [res for res, _ in assessed]
    if cfg.evaluate.gbt:
        results.append(gbt_result(cfg, examples, rows))
    reason = truth_reason
    limit = truth_result(truth, rows, min_group_rows=cfg.evaluate.min_group_rows,
                                 threshold_rule=cfg.train.threshold) if truth is not None else None
    if truth is not None and limit is None:
        reason = "the ground truth matches none of the evaluation rows"
    if limit is None:
        log.info("ground-truth limit skipped: %s", reason)
    oracle = oracle_result(cfg, examples, truth, rows=rows) if limit is not None and cfg.evaluate.oracle else None
    for r in [*results, oracle, limit]:
        if r is not None:
            r.metrics["f1_top_share"] = f1_top_share(r.test["is_hit"].to_numpy(), r.test["p"].to_numpy(),
                                                     r.test["cutoff"].to_numpy(), share=cfg.features.hit_share)
    notes = comparison_notes(results, limit, limit_reason=reason, oracle=oracle)
    for n in notes:
        log.info("%s", n)
    lineage = ", ".join(f"{k} Delta v{v.get('delta_version')}" for k, v in inputs.items())
    shown = results + [r for r in (oracle, limit) if r is not None]
    report = write_report(shown, cfg.path(cfg.paths.reports) / "evaluation",
                          title="hitcast evaluation: demo catalog, time-split test set",
                          notes=[f"inputs: {lineage}", *notes], bins=cfg.evaluate.calibration_bins)
    return EvaluationSummary(report, results, limit, notes, trained)
