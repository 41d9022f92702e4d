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
import socket
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from pyspark.testing import assertDataFrameEqual

from helpers import REPO, build_inputs, make_config
from hitcast.cluster import standalone
from hitcast.cluster.package import ENV_ALIAS, build_packages
from hitcast.cluster.submit import submit
from hitcast.config import load_config
from hitcast.model.promote import run_promote
from hitcast.model.training import run_training
from hitcast.scoring.stage import run_scoring
from hitcast.tables import read_table

pytestmark = pytest.mark.cluster

SETTINGS = ["demo.tracks=60", "demo.events_per_track=40", "demo.clip_seconds=3.0", "dsp.clip_seconds=3.0",
            "demo.mc_draws=20", "train.epochs=1", "train.batch_size=16", "train.workers=2", "train.ensemble=1"]
#: Columns of a scoring run that differ between any two runs.
RUN_COLUMNS = ("run_id", "scored_at")


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports the kernel reports free on 127.0.0.1 (held open together, so they differ)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def path_overrides(root: Path) -> list[str]:
    """The ``--set`` list :func:`helpers.make_config` applies: every path under ``root``."""
    return [f"paths.root={root}", "paths.warehouse=warehouse", "paths.raw=raw", "paths.audio_roots=[raw/audio]",
            "paths.models=models", "paths.reports=reports", "ingest.catalog_path=raw/catalog",
            "ingest.events_path=raw/events"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A standalone cluster (conf/standalone.yaml on free ports) for this module; stopped, and no process of it
    left, afterwards."""
    master, master_ui, w0, w1, ui0, ui1 = free_ports(6)
    overrides = [f"cluster.dir={tmp_path_factory.mktemp('cluster')}", f"cluster.master_port={master}",
                 f"cluster.master_ui_port={master_ui}", f"cluster.worker_ports=[{w0},{w1}]",
                 f"cluster.worker_ui_ports=[{ui0},{ui1}]", f"spark.master=spark://127.0.0.1:{master}"]
    cfg = load_config(REPO / "conf" / "standalone.yaml", overrides)
    t0 = time.perf_counter()
    info = standalone.start_cluster(cfg)
    print(f"cluster up in {time.perf_counter() - t0:.1f} s")
    try:
        assert standalone.alive_workers(standalone.master_status("127.0.0.1", master_ui)) == 2
        yield cfg, overrides
    finally:
        standalone.stop_cluster(cfg)
        assert standalone.group_members({d.pid for d in info.daemons}) == [], "a cluster process is left"
        assert standalone.running_cluster(cfg) is None
        shutil.rmtree(standalone.cluster_dir(cfg) / "work", ignore_errors=True)   # unpacked environments


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
