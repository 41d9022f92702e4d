"""The scoring job through ``spark-submit`` on a real Spark standalone cluster (a master and two one-core workers
on this machine, started by :mod:`hitcast.cluster.standalone` on free ports), with executors running the
environment ``make package`` packed (``--archives``) and the library zip (``--py-files``).

Its inputs (generate, ingest, features, spectrograms, a tiny 2-worker model, promotion) are built in-process on
local[2], then copied: one copy is scored by ``jobs/score.py`` on the cluster, the other by the same stage on
local[2]. The two ``predictions`` tables must hold the same rows (but the run id and time). Not in ``make test``:
5 minutes on two cores (inputs 1.7, cluster start 0.1, spark-submit 3, of which shipping the environment,
unpacked by the driver and each executor and removed again, takes 1 to 2); 11 minutes on a busy machine with
cold caches. Run it with ``make test-cluster``.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from pyspark.testing import assertDataFrameEqual

from clusterfix import RUN_COLUMNS, path_overrides, standalone_cluster
from helpers import REPO, build_inputs, make_config
from hitcast.cluster import standalone
from hitcast.cluster.package import ENV_ALIAS, build_packages
from hitcast.cluster.submit import submit
from hitcast.model.promote import run_promote
from hitcast.model.training import run_training
from hitcast.scoring.stage import run_scoring
from hitcast.tables import read_table

pytestmark = pytest.mark.cluster

SETTINGS = ["demo.tracks=60", "demo.events_per_track=40", "demo.clip_seconds=3.0", "dsp.clip_seconds=3.0",
            "demo.mc_draws=20", "train.epochs=1", "train.batch_size=16", "train.workers=2", "train.ensemble=1"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A standalone cluster for this module (:func:`clusterfix.standalone_cluster`)."""
    with standalone_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture(scope="module")
def scored_inputs(spark, tmp_path_factory):
    """(cluster root, local root): the same inputs, champion model and all, the local one already scored."""
    cfg = make_config(tmp_path_factory.mktemp("on-cluster"), *SETTINGS)
    build_inputs(spark, cfg)
    run_training(spark, cfg)
    run_promote(spark, cfg)
    local_root = tmp_path_factory.mktemp("on-local") / "root"
    shutil.copytree(cfg.paths.root, local_root)
    run_scoring(spark, make_config(local_root, *SETTINGS))
    return Path(cfg.paths.root), local_root


def test_scoring_submitted_to_the_cluster_stores_the_rows_of_a_local_run(spark, scored_inputs, cluster):
    cfg, cluster_overrides = cluster
    cluster_root, local_root = scored_inputs
    packages = build_packages()
    t0 = time.perf_counter()
    job_args = ["--conf", str(REPO / "conf" / "standalone.yaml")]
    for setting in (*cluster_overrides, *path_overrides(cluster_root), *SETTINGS):
        job_args += ["--set", setting]
    submit(cfg, REPO / "jobs" / "score.py", job_args, log_path=cluster_root / "spark-submit.log", timeout_s=1200)
    print(f"spark-submit score.py: {time.perf_counter() - t0:.1f} s ({packages})")

    # every executor ran in the shipped environment, unpacked in its work folder
    work = standalone.cluster_dir(cfg) / "work"
    executors = sorted(work.glob("worker-*/app-*/*"))
    assert len(executors) == 2 and {p.parts[-3] for p in executors} == {"worker-0", "worker-1"}
    assert all((p / ENV_ALIAS / "bin" / "python").exists() for p in executors)

    on_cluster = read_table(spark, make_config(cluster_root, *SETTINGS), "predictions").drop(*RUN_COLUMNS)
    on_local = read_table(spark, make_config(local_root, *SETTINGS), "predictions").drop(*RUN_COLUMNS)
    assert on_local.count() == 60
    assertDataFrameEqual(on_cluster, on_local)
