"""The pipeline through ``spark-submit`` on a real Spark standalone cluster (a master and two one-core workers
on this machine, on free ports), executors running the environment ``make package`` packed (``--archives``) and
the library zip (``--py-files``); and what happens when a worker dies in the middle of a job.

One generated catalog, two copies: one goes through ingest, features, spectrograms, training (two barrier
workers, one per executor) and scoring as ``spark-submit`` jobs on the cluster, the other through the same
stages in-process on local[2]. Every table but the model-dependent ones must hold the same rows; the cluster's
scores must be its own model bundle's output for the same inputs. Then a worker (its JVM, its executor and their
Python workers) is SIGKILLed while the spectrogram job runs, and again while the scoring job runs: each job
finishes on the other worker, and its table holds exactly the rows of the run without the kill.

Marked ``cluster``: ``make test-cluster`` runs it alone; ``make test`` runs it too.
"""
from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, functions as F
from pyspark.testing import assertDataFrameEqual

from clusterfix import (RUN_COLUMNS, drop_ended_environments, driver_scratch, executor_logs, job_args,
                        standalone_cluster, tasks_started, wait_for)
from helpers import REPO, make_config
from hitcast.cluster import standalone
from hitcast.cluster.package import ENV_ALIAS, ENV_ARCHIVE, build_packages
from hitcast.cluster.submit import log_tail, start_submit, submit
from hitcast.cluster.workers import kill_worker, start_worker
from hitcast.demo.generate import generate_demo
from hitcast.features.examples import features_as_of
from hitcast.features.stage import run_features
from hitcast.ingest.pipeline import run_ingest
from hitcast.model.bundle import load_bundle
from hitcast.model.promote import run_promote
from hitcast.model.registry import version_dir
from hitcast.model.training import run_training
from hitcast.scoring.inputs import scoring_inputs
from hitcast.scoring.stage import run_scoring
from hitcast.spectrograms.stage import run_spectrograms
from hitcast.tables import read_table

pytestmark = pytest.mark.cluster

SETTINGS = ["demo.tracks=60", "demo.events_per_track=40", "demo.clip_seconds=3.0", "dsp.clip_seconds=3.0",
            "demo.mc_draws=20", "train.epochs=1", "train.batch_size=16", "train.workers=2", "train.ensemble=1"]
#: Tables written by the data stages, compared row for row between the cluster and local[2].
DATA_TABLES = ("catalog", "engagement_events", "quarantine", "training_examples", "spectrograms")
#: Columns that say when a row was written, not what it holds.
WRITE_TIME_COLUMNS = ("ingested_at", "computed_at", *RUN_COLUMNS)
SUBMIT_TIMEOUT_S = 1500


def comparable(df: DataFrame, root: Path) -> DataFrame:
    """``df`` without write-time columns, with the data root in string columns (source files) replaced by
    ``<root>``, so that two copies of a pipeline under different roots can be compared row for row."""
    df = df.drop(*[c for c in WRITE_TIME_COLUMNS if c in df.columns])
    return df.select(*[F.regexp_replace(c, str(root), "<root>").alias(c) if t == "string" else F.col(c)
                       for c, t in df.dtypes])


def run_job(cfg, job: str, root: Path, *extra: str, name: str | None = None) -> float:
    """``spark-submit jobs/<job>`` to the cluster with its data under ``root``; returns the seconds it took."""
    t0 = time.perf_counter()
    args = job_args("standalone.yaml", root, *cfg.cluster_overrides, *SETTINGS) + list(extra)
    submit(cfg.cluster, REPO / "jobs" / job, args, log_path=root / "logs" / f"{name or job}.log",
           timeout_s=SUBMIT_TIMEOUT_S, scratch=driver_scratch(cfg.cluster))
    seconds = time.perf_counter() - t0
    drop_ended_environments(cfg.cluster)
    return seconds


class Cluster:
    """The running cluster's configuration and the ``--set`` overrides that reach it."""

    def __init__(self, cluster, overrides):
        self.cluster, self.cluster_overrides = cluster, overrides


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with standalone_cluster(tmp_path_factory.mktemp("cluster")) as (cfg, overrides):
        yield Cluster(cfg, overrides)


@pytest.fixture(scope="module")
def roots(spark, tmp_path_factory):
    """(cluster root, local root): one generated catalog; the local copy through every stage on local[2]."""
    local = make_config(tmp_path_factory.mktemp("on-local"), *SETTINGS)
    generate_demo(spark, local)
    cluster_root = tmp_path_factory.mktemp("on-cluster") / "root"
    shutil.copytree(local.paths.root, cluster_root)          # the raw catalog, events and audio only
    run_ingest(spark, local)
    run_features(spark, local)
    run_spectrograms(spark, local)
    run_training(spark, local)
    run_promote(spark, local)
    run_scoring(spark, local)
    return cluster_root, Path(local.paths.root)


@pytest.fixture(scope="module")
def pipeline(spark, roots, cluster):
    """The cluster copy through every job by ``spark-submit`` (promotion, a driver-only step, in-process)."""
    cluster_root, _ = roots
    print(f"packages: {build_packages()}")
    times = {job: run_job(cluster, job, cluster_root) for job in
             ("ingest.py", "features.py", "spectrograms.py", "train.py")}
    run_promote(spark, make_config(cluster_root, *SETTINGS))
    times["score.py"] = run_job(cluster, "score.py", cluster_root)
    print("spark-submit on the cluster: " + ", ".join(f"{j} {s:.0f} s" for j, s in times.items()))
    return times


@pytest.mark.parametrize("table", DATA_TABLES)
def test_each_data_table_on_the_cluster_holds_the_rows_of_local(spark, roots, pipeline, table):
    cluster_root, local_root = roots
    on_cluster = read_table(spark, make_config(cluster_root, *SETTINGS), table)
    on_local = read_table(spark, make_config(local_root, *SETTINGS), table)
    assert on_local.count() > 0
    assertDataFrameEqual(comparable(on_cluster, cluster_root), comparable(on_local, local_root))


def test_executors_ran_the_shipped_environment(roots, pipeline, cluster):
    work = standalone.cluster_dir(cluster.cluster) / "work"
    executors = sorted(work.glob("worker-*/app-*/*"))
    # one executor per worker for each of the five applications
    assert len(executors) == 10 and {p.parts[-3] for p in executors} == {"worker-0", "worker-1"}
    # each unpacked the archive as ./environment (whose bin/python ran its tasks: spark.pyspark.python); the
    # unpacked copies themselves were deleted once each application ended (clusterfix.drop_ended_environments)
    unpacked = {p: [line for line in (p / "stderr").read_text(errors="replace").splitlines()
                    if "Unpacking an archive" in line and ENV_ARCHIVE.name in line] for p in executors}
    assert all(len(lines) == 1 and lines[0].rstrip().endswith(f"/{ENV_ALIAS}") for lines in unpacked.values()), \
        unpacked
    assert not any((p / ENV_ALIAS).exists() for p in executors)


def test_training_ran_two_barrier_workers_one_per_executor(spark, roots, pipeline, cluster):
    cluster_root, _ = roots
    models = read_table(spark, make_config(cluster_root, *SETTINGS), "models").collect()
    assert [(m.variant, m.workers) for m in models] == [("fused", 2)]
    # a barrier task logs its allGather ("... has entered the global sync") in its executor's log: the training
    # application's executor on each of the two workers ran one
    synced = {worker: {log.parts[-3] for log in executor_logs(cluster.cluster, worker)
                       if "has entered the global sync" in log.read_text(errors="replace")}
              for worker in (0, 1)}
    assert len(synced[0]) == 1 and synced[0] == synced[1], synced


def test_cluster_scores_are_the_bundles_output_for_the_same_inputs(spark, roots, pipeline):
    cluster_root, _ = roots
    cfg = make_config(cluster_root, *SETTINGS)
    stored = read_table(spark, cfg, "predictions").toPandas().sort_values("track_id").reset_index(drop=True)
    assert stored["model_version"].nunique() == 1 and len(stored) == 60
    as_of = stored["as_of"].iloc[0]
    features = features_as_of(read_table(spark, cfg, "catalog"), read_table(spark, cfg, "engagement_events"),
                              as_of=as_of, cfg=cfg)
    inputs = scoring_inputs(features, read_table(spark, cfg, "spectrograms")).toPandas()
    scores = load_bundle(version_dir(cfg, stored["model_version"].iloc[0])).predict_pandas(inputs)
    expected = dict(zip(inputs["track_id"], scores["hit_probability"]))
    assert stored["hit_probability"].tolist() == pytest.approx([expected[t] for t in stored["track_id"]],
                                                               rel=1e-6, abs=1e-5)
    assert stored["hit_probability"].nunique() > 30


def killed_midway(cluster, job: str, root: Path, *extra: str) -> str:
    """Submit ``job`` (data under ``root``), SIGKILL worker 1 once its executor runs a task, let the job finish
    on worker 0, start worker 1 again. Returns the driver's log."""
    log_path = root / "logs" / f"{job}-killed.log"
    args = job_args("standalone.yaml", root, *cluster.cluster_overrides, *SETTINGS) + list(extra)
    earlier = set(executor_logs(cluster.cluster, 1))            # other applications' executors
    proc = start_submit(cluster.cluster, REPO / "jobs" / job, args, log_path=log_path,
                        scratch=driver_scratch(cluster.cluster))
    killed = False
    try:
        wait_for(lambda: tasks_started(cluster.cluster, 1, known=earlier) > 0, timeout_s=SUBMIT_TIMEOUT_S,
                 what="worker 1's executor ran a task", proc=proc, log=log_path, poll_s=0.05)
        assert proc.poll() is None, "the job ended before the kill"
        kill_worker(cluster.cluster, 1)
        killed = True
        code = proc.wait(timeout=SUBMIT_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if killed:
            start_worker(cluster.cluster, 1)
        drop_ended_environments(cluster.cluster)
    assert code == 0, log_tail(log_path, 40)
    return log_path.read_text(errors="replace")


def fresh_copy(src: Path, dest: Path, drop: tuple[str, ...]) -> Path:
    """A copy of a pipeline root without the tables ``drop`` (and the logs)."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("logs"))
    for table in drop:
        shutil.rmtree(dest / "warehouse" / table)
    return dest


def test_a_worker_killed_during_the_spectrogram_job(spark, roots, pipeline, cluster, tmp_path):
    cluster_root, _ = roots
    root = fresh_copy(cluster_root, tmp_path / "root", ("spectrograms",))
    driver_log = killed_midway(cluster, "spectrograms.py", root)
    assert "Lost executor" in driver_log or "lost worker" in driver_log.lower(), driver_log[-3000:]
    after = read_table(spark, make_config(root, *SETTINGS), "spectrograms")
    assert after.groupBy("track_id").count().where("count > 1").count() == 0
    before = read_table(spark, make_config(cluster_root, *SETTINGS), "spectrograms")
    assertDataFrameEqual(comparable(after, root), comparable(before, cluster_root))


def test_a_worker_killed_during_the_scoring_job(spark, roots, pipeline, cluster, tmp_path):
    cluster_root, _ = roots
    root = fresh_copy(cluster_root, tmp_path / "root", ("predictions", "scoring_runs"))
    driver_log = killed_midway(cluster, "score.py", root)
    assert "Lost executor" in driver_log or "lost worker" in driver_log.lower(), driver_log[-3000:]
    after = read_table(spark, make_config(root, *SETTINGS), "predictions")
    assert after.groupBy("track_id", "model_version").count().where("count > 1").count() == 0
    before = read_table(spark, make_config(cluster_root, *SETTINGS), "predictions")
    assertDataFrameEqual(after.drop(*RUN_COLUMNS), before.drop(*RUN_COLUMNS))
