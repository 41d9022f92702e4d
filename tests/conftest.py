"""One session-scoped Spark fixture (local[2], UI off, few shuffle partitions, Delta on)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from hitcast.config import Config, load_config
from hitcast.spark import build_session

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def make_config(tmp_path: Path, *overrides: str) -> Config:
    """Configuration for a test: local[2] and every path under ``tmp_path``."""
    return load_config(None, [
        "spark.master=local[2]",
        f"paths.root={tmp_path}",
        "paths.warehouse=warehouse",
        "paths.raw=raw",
        "paths.audio_roots=[raw/audio]",
        "paths.models=models",
        "paths.reports=reports",
        "ingest.catalog_path=raw/catalog",
        "ingest.events_path=raw/events",
        *overrides,
    ])


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    os.environ.setdefault("HITCAST_SPARK_LOG_LEVEL", "ERROR")
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
