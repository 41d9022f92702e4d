"""Configuration loading/overrides and the Spark session's Delta + Arrow settings."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hitcast.config import load_config
from hitcast.confyaml import parse_overrides
from hitcast.errors import ConfigError
from hitcast.spark import session_settings

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


def test_session_settings_carry_delta_arrow_and_worker_env(tmp_path):
    cfg = load_config(None, [f"paths.root={tmp_path}", "spark.arrow_max_records_per_batch=32"])
    s = session_settings(cfg, "x")
    assert s["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert s["spark.sql.execution.arrow.maxRecordsPerBatch"] == 32
    assert s["spark.executorEnv.OMP_NUM_THREADS"] == "1"
    assert s["spark.sql.session.timeZone"] == "UTC"
    assert s["spark.pyspark.python"]
    # No jar cache under tmp_path: Delta comes through spark.jars.packages into the Ivy cache.
    assert s["spark.jars.packages"] == "io.delta:delta-spark_2.13:4.0.1,io.delta:delta-storage:4.0.1"


def test_spark_fixture_writes_and_reads_delta(spark, tmp_path):
    path = str(tmp_path / "t")
    spark.createDataFrame([(1, "a"), (2, "b")], "id INT, v STRING").write.format("delta").save(path)
    rows = spark.read.format("delta").load(path).orderBy("id").collect()
    assert [(r.id, r.v) for r in rows] == [(1, "a"), (2, "b")]
    assert spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch") == "64"


@pytest.mark.parametrize("job", sorted(p.name for p in (ROOT / "jobs").glob("*.py")))
def test_every_job_has_help(job):
    out = subprocess.run([sys.executable, str(ROOT / "jobs" / job), "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--conf" in out.stdout and "--set" in out.stdout
