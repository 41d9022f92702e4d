"""The whole evaluation on tiny synthetic Delta tables: three Keras variants trained on 2 barrier workers,
the GBT baseline, the report; a second run reuses every model version (slow: ~3 minutes on 2 cores)."""
from __future__ import annotations

import json

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from helpers import TINY_TRAIN, make_config, synth_frames
from hitcast.evaluation.report import PLOTS
from hitcast.lifecycle.evaluation import evaluate_and_record


@pytest.mark.slow
def test_evaluate_catalog_end_to_end(spark, tmp_path):
    cfg = make_config(tmp_path, *TINY_TRAIN, "evaluate.gbt_iterations=10", "evaluate.min_group_rows=5")
    examples, spectrograms = synth_frames(spark, 40)
    examples.write.format("delta").save(cfg.table("training_examples"))
    spectrograms.write.format("delta").save(cfg.table("spectrograms"))
    summary = evaluate_and_record(spark, cfg, truth=None, truth_reason="not a demo catalog")
    assert [r.name for r in summary.results] == ["fused", "tabular", "audio", "gbt"]
    assert [r.version.split("-")[0] for r in summary.results[:3]] == ["fused", "tabular", "audio"]
    assert all(r.metrics["rows"] == 40 and r.metrics["positives"] == summary.results[0].metrics["positives"]
               for r in summary.results)
    assert summary.limit is None and summary.notes[-1].startswith("limit: skipped: ")
    assert summary.report == tmp_path / "reports" / "evaluation" / "report.md"
    for name in PLOTS:
        assert (summary.report.parent / name).stat().st_size > 1000
    text = summary.report.read_text()
    for r in summary.results:
        assert f"| {r.name} | `{r.version}` |" in text
    saved = json.loads((summary.report.parent / "results.json").read_text())
    assert sorted(saved) == ["audio", "fused", "gbt", "tabular"]
    models = spark.read.format("delta").load(cfg.table("models"))
    assertDataFrameEqual(models.select("model_version", "role"),
                         [Row(model_version=r.version, role="candidate" if r.name == "fused" else "ablation")
                          for r in summary.results[:3]])
    # every evaluated version, ablations included, has its test figures in the mirror and in its MLflow run
    figures = {r["model_version"]: json.loads(r["test_metrics"]) for r in models.collect()}
    for r in summary.results[:3]:
        assert figures[r.version]["roc_auc"] == pytest.approx(r.metrics["roc_auc"], abs=1e-12)
        assert (figures[r.version]["threshold"], figures[r.version]["rows"]) == (r.threshold, 40)
    # second run: the same versions, nothing retrained, no new rows
    again = evaluate_and_record(spark, cfg, truth=None, truth_reason="not a demo catalog")
    assert [r.version for r in again.results] == [r.version for r in summary.results]
    assert [r.metrics for r in again.results[:3]] == [r.metrics for r in summary.results[:3]]
    assert spark.read.format("delta").load(cfg.table("models")).count() == 3
