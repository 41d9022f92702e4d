"""Configuration loading/overrides, the Spark session's Delta + Arrow settings, and hitcast's one MERGE."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from helpers import REPO
from hitcast.config import load_config
from hitcast.confyaml import parse_overrides
from hitcast.errors import ConfigError
from hitcast.spark import session_settings
from hitcast.tables import MergeResult, merge_upsert, table_version

ROOT = Path(__file__).resolve().parents[1]


def test_local_conf_extends_base_and_overrides_apply():
    cfg = load_config(ROOT / "conf" / "local.yaml", ["train.epochs=3", "spark.master=local[2]",
                                                     "features.cutoffs=[2025-01-01]",
                                                     "spark.conf.spark.sql.shuffle.partitions=5"])
    assert cfg.spark.master == "local[2]"
    assert cfg.train.epochs == 3
    assert cfg.features.cutoffs == ["2025-01-01"]
    assert cfg.spark.conf["spark.sql.shuffle.partitions"] == 5
    assert cfg.spark.conf["spark.ui.enabled"] == "false"          # from local.yaml
    assert cfg.features.horizon_days == 56                         # from base.yaml
    assert cfg.table("predictions") == str(ROOT / "data" / "warehouse" / "predictions")


def test_cluster_template_loads():
    cfg = load_config(ROOT / "conf" / "cluster.yaml")
    assert cfg.spark.master.startswith("spark://")
    assert cfg.table("predictions") == "/mnt/hitcast/warehouse/predictions"


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"unknown configuration key train\.epoks"):
        load_config(None, ["train.epoks=3"])


def test_bad_value_is_named():
    with pytest.raises(ConfigError, match=r"train\.epochs: cannot use 'many'"):
        load_config(None, ["train.epochs=many"])


def test_override_needs_equals():
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["train.epochs"])


def test_session_settings_carry_delta_arrow_and_worker_env(tmp_path, monkeypatch):
    cfg = load_config(None, [f"paths.root={tmp_path}", "spark.arrow_max_records_per_batch=32"])
    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    s = session_settings(cfg, "x")
    assert s["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert s["spark.sql.execution.arrow.maxRecordsPerBatch"] == 32
    assert s["spark.executorEnv.OMP_NUM_THREADS"] == "1"
    assert s["spark.sql.session.timeZone"] == "UTC"
    assert s["spark.pyspark.python"] == s["spark.pyspark.driver.python"] == sys.executable
    monkeypatch.setenv("PYSPARK_PYTHON", "/opt/worker/python3")       # the workers' interpreter may differ
    assert session_settings(cfg, "x")["spark.pyspark.python"] == "/opt/worker/python3"
    # No jar cache under tmp_path: the checkout's (make jars) serves a data root anywhere
    assert s["spark.jars"] == ",".join(str(REPO / ".cache" / "jars" / f"{name}-4.0.1.jar")
                                       for name in ("delta-spark_2.13", "delta-storage"))
    assert "spark.jars.packages" not in s
    # a $HITCAST_JARS without them: Delta comes through spark.jars.packages into the Ivy cache under the root
    monkeypatch.setenv("HITCAST_JARS", str(tmp_path / "empty"))
    s = session_settings(cfg, "x")
    assert s["spark.jars.packages"] == "io.delta:delta-spark_2.13:4.0.1,io.delta:delta-storage:4.0.1"
    assert s["spark.jars.ivy"] == str(tmp_path / ".cache" / "ivy") and "spark.jars" not in s


def test_built_session_applies_the_settings(spark):
    assert spark.conf.get("spark.sql.extensions") == "io.delta.sql.DeltaSparkSessionExtension"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch") == "64"      # conf/base.yaml
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"                      # the fixture's override


def test_merge_upsert_matches_keys_null_safely_and_reports_what_it_changed(spark, tmp_path):
    location = str(tmp_path / "t")

    def upsert(rows, **kw):
        return merge_upsert(spark, spark.createDataFrame(rows, "k string, n int, v string"), location=location,
                            keys=["k"], **kw)

    def table():
        return spark.read.format("delta").load(location)

    assert upsert([("a", 1, "x"), (None, 2, "y")]) == MergeResult(inserted=2)          # creates the table
    # NULL keys match each other (<=>): 'a' and NULL are replaced, 'b' is new
    assert upsert([("a", 10, "x2"), (None, 20, "y2"), ("b", 3, "z")]) == MergeResult(inserted=1, updated=2)
    assertDataFrameEqual(table(), [Row(k="a", n=10, v="x2"), Row(k=None, n=20, v="y2"), Row(k="b", n=3, v="z")])
    # update=False is insert-only: matched rows are kept, and nothing new means no new version
    version = table_version(spark, location)
    assert upsert([("a", 99, "ignored"), (None, 99, "ignored")], update=False) == MergeResult()
    assert table_version(spark, location) == version
    # a condition over t (target) and s (source) replaces only the rows it holds for
    assert upsert([("a", 5, "older"), ("b", 4, "newer")], update="s.n > t.n") == MergeResult(updated=1)
    assertDataFrameEqual(table(), [Row(k="a", n=10, v="x2"), Row(k=None, n=20, v="y2"),
                                   Row(k="b", n=4, v="newer")])


@pytest.mark.parametrize("job", sorted(p.name for p in (ROOT / "jobs").glob("*.py")))
def test_every_job_has_help(job):
    out = subprocess.run([sys.executable, str(ROOT / "jobs" / job), "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--conf" in out.stdout and "--set" in out.stdout
