"""One session-scoped Spark fixture (local[2], UI off, few shuffle partitions, Delta on)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import SHARED, make_config
from hitcast.config import Config
from hitcast.spark import build_session


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    os.environ.setdefault("HITCAST_SPARK_LOG_LEVEL", "ERROR")
    # pyspark.testing.assertDataFrameEqual imports pyspark.pandas, which warns unless this is set first
    os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")
    cfg = make_config(tmp_path_factory.mktemp("spark"), "spark.shuffle_partitions=2",
                      "spark.conf.spark.ui.enabled=false", "spark.conf.spark.sql.adaptive.enabled=false",
                      "spark.driver_memory=3g")
    session = build_session(cfg, "hitcast-tests")
    yield session
    session.stop()


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip(f"shared data folder not found at {path}")
    return path
