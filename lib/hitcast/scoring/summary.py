"""The end-of-pipeline summary an analyst sees after ``make demo``: where the predictions are, the champion's
top tracks and why, and how good the model is on held-out data."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.tables import read_table

log = logging.getLogger(__name__)


@dataclass
class PipelineSummary:
    """Outputs of a pipeline run, for people."""

    location: str
    rows: int
    tracks: int
    model_version: str
    top: pd.DataFrame
    test_metrics: dict[str, float]
    report: str | None

    def __str__(self) -> str:
        """Where the table is, the top tracks and the held-out figures, as plain text."""
        top = self.top.copy()
        top["hit_probability"] = top["hit_probability"].map("{:.4f}".format)
        top["popularity_score"] = top["popularity_score"].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
        m = self.test_metrics
        lines = [
            f"predictions table: {self.location}",
            f"  {self.rows} rows for {self.tracks} catalog tracks, model {self.model_version}",
            "  read it with: spark.read.format('delta').load('" + self.location + "')",
            "",
            f"top {len(top)} tracks by hit probability:",
            top.to_string(index=False),
            "",
            "held-out test split: " + ", ".join(f"{k}={m[k]:.3f}" for k in ("f1", "roc_auc", "pr_auc", "brier")
                                                  if k in m),
        ]
        if self.report:
            lines.append(f"evaluation report: {self.report}")
        return "\n".join(lines)


def find_test_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Pull the held-out (test split) figures out of a model's metrics JSON.

    Accepts ``{"test": {...}}`` or flat ``{"test_f1": ...}`` layouts.
    """
    test = metrics.get("test")
    if isinstance(test, dict):
        return {k: float(v) for k, v in test.items() if isinstance(v, (int, float))}
    return {k[5:]: float(v) for k, v in metrics.items() if k.startswith("test_") and isinstance(v, (int, float))}


def evaluation_of(report_dir: Path, model_version: str) -> dict[str, Any]:
    """The evaluation job's results for ``model_version`` (``{"test": {...}, ...}``), or ``{}``.

    ``jobs/evaluate.py`` writes ``results.json`` beside its report: one entry per evaluated model.
    """
    path = report_dir / "results.json"
    if not path.exists():
        return {}
    results = json.loads(path.read_text())
    return next((r for r in results.values() if isinstance(r, dict) and r.get("version") == model_version), {})


def pipeline_summary(spark: SparkSession, cfg: Config, *, top_n: int) -> PipelineSummary:
    """Read ``predictions``, ``catalog`` and ``models`` and summarise the scoring model's scores (the
    champion, or ``score.model_version``).

    Returns
    -------
    PipelineSummary
        ``top`` has columns track_id, title, artist_name, genre, hit_probability, popularity_score,
        mode, audio_status, top_reason (the ``top_n`` highest ``hit_probability``; tracks whose probability
        saturates at 1.0 are ordered by ``popularity_score``).
    """
    from hitcast.lifecycle.registry import resolve_model

    version, _ = resolve_model(spark, cfg, cfg.score.model_version)
    preds = read_table(spark, cfg, "predictions")
    models = read_table(spark, cfg, "models")
    current = preds.filter(F.col("model_version") == version)
    catalog = read_table(spark, cfg, "catalog").select("track_id", "title", "artist_name", "genre")
    first = F.col("reasons")[0]
    reason = F.when(first.isNotNull(), F.format_string("%s %+.3f", first["input"], first["contribution"]))
    top = (current.join(catalog, "track_id", "left")
           .orderBy(F.desc("hit_probability"), F.desc_nulls_last("popularity_score"), "track_id").limit(top_n)
           .select("track_id", "title", "artist_name", "genre", "hit_probability", "popularity_score",
                   "mode", "audio_status", reason.alias("top_reason")).toPandas())
    row = models.filter(F.col("model_version") == version).first()
    metrics = json.loads(row["metrics"] or "{}") if row else {}
    report_dir = cfg.path(cfg.paths.reports) / "evaluation"
    evaluated = evaluation_of(report_dir, version)
    if evaluated:
        metrics = evaluated
    report = str(report_dir / "report.md") if (report_dir / "report.md").exists() else None
    return PipelineSummary(location=cfg.table("predictions"), rows=current.count(),
                           tracks=read_table(spark, cfg, "catalog").count(), model_version=version,
                           top=top, test_metrics=find_test_metrics(metrics), report=report)
