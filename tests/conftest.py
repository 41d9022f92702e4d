"""One session-scoped Spark fixture (local[2], UI off, few shuffle partitions, Delta on); the analysts' SQL
endpoint the endpoint and notebook tests share; for the tests marked ``cluster``, one standalone cluster per
session and the generated demo inputs they share (built on first use)."""
from __future__ import annotations

import os
import shutil
import time
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


@pytest.fixture(scope="session")
def session_cluster(tmp_path_factory):
    """One standalone cluster (``clusterfix.Cluster``) for every module marked ``cluster``: started on first use,
    stopped at the end of the session (its applications run the environment unpacked once for it)."""
    from clusterfix import standalone_cluster

    with standalone_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def cluster_pipeline(spark, session_cluster, demo_inputs, tmp_path_factory):
    """The demo pipeline through ``spark-submit`` on the session's cluster (``clusterpipeline.Pipeline``),
    read by tests/test_cluster.py and tests/test_faults_driver.py (read-only: copy its root)."""
    from clusterpipeline import build_pipeline

    return build_pipeline(spark, session_cluster, demo_inputs, tmp_path_factory.mktemp("on-cluster") / "root")


@pytest.fixture(scope="session")
def demo_inputs(spark, tmp_path_factory) -> tuple[Path, Path]:
    """(raw root, inputs root), both read-only (copy them): a generated demo catalog (``clusterfix.DEMO_SETTINGS``)
    as generated, and the same catalog through ingest, features and spectrograms on local[2]."""
    from clusterfix import DEMO_SETTINGS
    from helpers import build_inputs
    from hitcast.demo.generate import generate_demo

    base = tmp_path_factory.mktemp("demo-inputs")
    cfg = make_config(base / "inputs", *DEMO_SETTINGS)
    t0 = time.perf_counter()
    generate_demo(spark, cfg)
    shutil.copytree(cfg.paths.root, base / "raw")            # the raw catalog, events and audio only
    build_inputs(spark, cfg, generate=False)
    print(f"demo inputs built on local[2] in {time.perf_counter() - t0:.0f} s")
    return base / "raw", Path(cfg.paths.root)


@pytest.fixture(scope="session")
def trained_demo(spark, tmp_path_factory) -> Path:
    """Root of a small generated catalog (``analyst_pipeline.SETTINGS``) through ingest, features, spectrograms
    and training on local[2]; read-only (copy it). Shared by the analysts' pipeline and the incremental
    scoring tests."""
    from analyst_pipeline import build_trained

    return build_trained(spark, tmp_path_factory.mktemp("trained-demo") / "root")


@pytest.fixture(scope="session")
def analysts_endpoint(spark, tmp_path_factory, trained_demo):
    """(configuration, ``ServerInfo``): the SQL endpoint over the analysts' scored pipeline
    (``analyst_pipeline.scored_pipeline``) on a free loopback port, its own metastore, shared by
    tests/test_sql_endpoint.py and tests/test_notebook.py (one Thrift server start, 15-20 s, for both); stopped,
    and checked gone, at the end of the session."""
    import dataclasses

    from analyst_pipeline import free_port, scored_pipeline
    from hitcast.sql import server

    pipeline = scored_pipeline(spark, tmp_path_factory.mktemp("analysts") / "root", trained_demo)
    cfg = dataclasses.replace(pipeline.cfg, sql=dataclasses.replace(pipeline.cfg.sql, port=free_port(),
                                                                    metastore_dir="metastore-endpoint"))
    t0 = time.perf_counter()
    info = server.start_server(cfg)
    print(f"SQL endpoint up in {info.start_s:.1f} s, tables and views registered after "
          f"{time.perf_counter() - t0:.1f} s")
    try:
        yield cfg, info
    finally:
        server.stop_server(cfg)
        assert not server.is_server_process(info.pid), "the Thrift server outlived its fixture"
        assert not server.pid_file(cfg).exists()
