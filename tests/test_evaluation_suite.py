"""The whole evaluation on tiny synthetic Delta tables: three Keras variants trained on 2 barrier workers,
the GBT baseline, the report; a second run reuses every model version (slow: ~3 minutes on 2 cores)."""
from __future__ import annotations

import json

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from helpers import TINY_TRAIN, make_config, synth_frames
from hitcast.evaluation.report import PLOTS
from hitcast.evaluation.suite import evaluate_catalog


@pytest.mark.slow
def test_evaluate_catalog_end_to_end(spark, tmp_path):
    cfg = make_config(tmp_path, *TINY_TRAIN, "evaluate.gbt_iterations=10", "evaluate.min_group_rows=5")
    examples, spectrograms = synth_frames(spark, 40)
    examples.write.format("delta").save(cfg.table("training_examples"))
    spectrograms.write.format("delta").save(cfg.table("spectrograms"))
    summary = evaluate_catalog(spark, cfg)
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
    assertDataFrameEqual(models.select("model_version"), [Row(model_version=r.version) for r in summary.results[:3]])
    # second run: the same versions, nothing retrained, no new rows
    again = evaluate_catalog(spark, cfg)
    assert [r.version for r in again.results] == [r.version for r in summary.results]
    assert [r.metrics for r in again.results[:3]] == [r.metrics for r in summary.results[:3]]
    assert spark.read.format("delta").load(cfg.table("models")).count() == 3
