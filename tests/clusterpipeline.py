"""The demo pipeline through ``spark-submit`` on the session's standalone cluster, built once per test session
(conftest.py's ``cluster_pipeline``) and read by the cluster modules: tests/test_cluster.py checks it,
tests/test_faults_driver.py starts its scoring faults from a copy of it.

The generated catalog goes through ingest, features, spectrograms, training and scoring as ``spark-submit``
jobs (promotion, a driver-only step, in-process). :data:`SHIPPED_JOB` ships the packed environment
(``--archives``); the others run the copy unpacked once for the cluster. The training job is run the way a lost
machine makes an operator run it: worker 1 is SIGKILLed once the chief has written the checkpoint of epoch 1,
worker 1 is started again and the same command re-run (it resumes from that checkpoint)."""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from clusterfix import (DEMO_SETTINGS, Cluster, KilledRun, applications, drop_ended_environments, driver_scratch,
                        job_args, kill_worker_during, wait_for)
from helpers import REPO, make_config
from hitcast.cluster import standalone
from hitcast.cluster.submit import submit

EPOCHS = 5
#: Small batches, so that an epoch takes several steps and the kill lands mid-training; one Petastorm reader
#: thread, which makes every epoch's data order a function of (seed, epoch, rank).
SETTINGS = [*DEMO_SETTINGS, f"train.epochs={EPOCHS}", "train.batch_size=4", "train.workers=2", "train.ensemble=1",
            "train.reader_workers=1"]
SUBMIT_TIMEOUT_S = 1500
#: The pipeline's job that ships the packed environment (``--archives``); the others run the unpacked copy.
SHIPPED_JOB = "spectrograms.py"


@dataclass(frozen=True)
class Pipeline:
    """What :func:`build_pipeline` ran: the cluster copy's ``root`` and the in-process copy's ``local_root``
    (the same generated catalog through the data stages on local[2]); ``runs`` = {job: (seconds, application
    id)} of the jobs that ran to the end (``train.py``: the re-run); ``lost`` = the training run that lost worker
    1 (``seen``: the training worker processes, interpreter by PID, just before the kill); ``left_s`` = seconds
    until no training worker process was left after it. Read-only: copy ``root`` to change anything."""

    root: Path
    local_root: Path
    runs: dict[str, tuple[float, str]]
    lost: KilledRun
    left_s: float


def trainloop_processes(cluster_dir: Path) -> dict[int, str]:
    """Training worker processes (``hitcast.model.trainloop``) running in this cluster's executors: their
    interpreter (the first word of the command line) by PID."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if b"hitcast.model.trainloop" in cmd and cwd.startswith(str(cluster_dir)):
            found[int(proc.name)] = cmd.split(b" ")[0].decode()
    return found


def run_job(cluster: Cluster, job: str, root: Path, *extra: str, name: str | None = None,
            **options) -> tuple[float, str]:
    """``spark-submit jobs/<job>`` to the cluster with its data under ``root`` (``options``: of
    :func:`hitcast.cluster.submit.submit_command`); returns the seconds it took and its application's id."""
    t0 = time.perf_counter()
    args = job_args("standalone.yaml", root, *cluster.cluster_overrides, *SETTINGS) + list(extra)
    earlier = applications(cluster.cluster)
    submit(cluster.cluster, REPO / "jobs" / job, args, log_path=root / "logs" / f"{name or job}.log",
           timeout_s=SUBMIT_TIMEOUT_S, scratch=driver_scratch(cluster.cluster), **options)
    seconds = time.perf_counter() - t0
    (app,) = applications(cluster.cluster) - earlier
    drop_ended_environments(cluster.cluster)
    return seconds, app


def lose_a_training_worker(cluster: Cluster, root: Path) -> tuple[KilledRun, float]:
    """``spark-submit jobs/train.py``, worker 1 SIGKILLed once the chief's checkpoint of epoch 1 exists; returns
    the run and the seconds until the surviving worker's TensorFlow process was gone too."""
    folder = standalone.cluster_dir(cluster.cluster)
    lost = kill_worker_during(
        cluster, REPO / "jobs" / "train.py", job_args("standalone.yaml", root, *cluster.cluster_overrides, *SETTINGS),
        log_path=root / "logs" / "train-killed.log", timeout_s=SUBMIT_TIMEOUT_S,
        when=lambda: any((root / "models").glob("*/checkpoints/epoch-*/state.json")),
        what="the chief's checkpoint of epoch 1", before_kill=lambda: trainloop_processes(folder))
    left_s = wait_for(lambda: not trainloop_processes(folder), timeout_s=120,
                      what="no training worker process left in the executors")
    return lost, left_s


def build_pipeline(spark, cluster: Cluster, demo_inputs: tuple[Path, Path], root: Path) -> Pipeline:
    """Copy the generated catalog (``demo_inputs``: raw root, in-process root) to ``root`` and run every job
    on ``cluster``; the training job loses a worker and is re-run."""
    from hitcast.lifecycle.promote import run_promote

    raw, local_root = demo_inputs
    shutil.copytree(raw, root)
    runs = {job: run_job(cluster, job, root, **({"python_env": ""} if job == SHIPPED_JOB else {}))
            for job in ("ingest.py", "features.py", "spectrograms.py")}
    lost, left_s = lose_a_training_worker(cluster, root)
    runs["train.py"] = run_job(cluster, "train.py", root)
    run_promote(spark, make_config(root, *SETTINGS))
    runs["score.py"] = run_job(cluster, "score.py", root)
    print("spark-submit on the cluster: " + ", ".join(f"{j} {s:.0f} s" for j, (s, _) in runs.items())
          + f" (the training run that lost a worker: {lost.seconds:.0f} s)")
    return Pipeline(root, local_root, runs, lost, left_s)
