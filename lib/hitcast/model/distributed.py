"""Distributed training as a Spark barrier stage: one TensorFlow worker per barrier task.

Each task of ``sc.parallelize(range(N), N).barrier().mapPartitions(...)``:

1. picks a free port on its host and exchanges ``rank:host:port`` with the others through
   ``BarrierTaskContext.allGather``; the hosts come from ``getTaskInfos()``;
2. builds ``TF_CONFIG`` (``cluster.worker`` = every address, ``task.index`` = its rank);
3. runs :mod:`hitcast.model.trainloop` in a fresh process of the same interpreter (the venv's, since
   Spark's Python workers run ``PYSPARK_PYTHON``), with ``OMP_NUM_THREADS=1``;
4. returns that process's result (weights checksum, per-epoch losses, chief's metrics) to the driver.

The worker process dies with the Python worker that started it (Linux ``PR_SET_PDEATHSIG``): when a peer is
lost, Spark fails the barrier stage and kills the remaining tasks, and their TensorFlow processes, blocked in
a collective with the lost peer, must not be left behind. A failed barrier *result* stage is not retried
("Could not recover from a failed barrier ResultStage"): the job fails, and a re-run resumes from the chief's
last checkpoint (:mod:`hitcast.model.checkpoints`).

The chief's log lines (per-epoch progress) go to the task's stderr, which is the driver's console in
local mode and the executor log on a cluster.
"""
from __future__ import annotations

import ctypes
import json
import logging
import os
import pickle
import socket
import subprocess
import sys
import tempfile
from typing import Any

from hitcast.errors import HitcastError

log = logging.getLogger(__name__)


class TrainingError(HitcastError):
    """A training worker failed or the workers disagree (the message names the worker)."""


def free_port() -> int:
    """A TCP port that is free on this host right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def tf_config(addresses: list[str], rank: int) -> str:
    """``TF_CONFIG`` JSON for worker ``rank`` of ``addresses`` (``host:port``, in rank order)."""
    return json.dumps({"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": rank}})


def _die_with_parent() -> None:
    """``preexec_fn``: SIGKILL this child when the thread that started it exits (Linux; elsewhere a no-op)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 9)        # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass


def _run_worker(spec: dict[str, Any], timeout_s: int) -> dict[str, Any]:
    """Run one training worker process for ``spec`` (which holds ``tf_config``) and return its result."""
    with tempfile.TemporaryDirectory(prefix="hitcast-train-") as tmp:
        spec_path, result_path = os.path.join(tmp, "spec.pkl"), os.path.join(tmp, "result.pkl")
        log_path = os.path.join(tmp, "worker.log")
        with open(spec_path, "wb") as fh:
            pickle.dump(spec, fh)
        # the child imports what this Python worker imports: on a cluster hitcast comes from --py-files (a zip
        # on sys.path, not on PYTHONPATH)
        path = os.pathsep.join([p for p in sys.path if p] + [os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env = dict(os.environ, TF_CONFIG=spec["tf_config"], OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2",
                   PYTHONPATH=path)
        with open(log_path, "wb") as logf:
            stderr = None if spec["rank"] == 0 else logf
            proc = subprocess.run([sys.executable, "-m", "hitcast.model.trainloop", spec_path, result_path],
                                  env=env, stdout=logf, stderr=stderr, timeout=timeout_s, check=False,
                                  preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        if proc.returncode != 0 or not os.path.exists(result_path):
            with open(log_path, "rb") as fh:
                tail = fh.read()[-3000:].decode("utf-8", "replace")
            raise TrainingError(f"training worker {spec['rank']} exited with code {proc.returncode}: {tail}")
        with open(result_path, "rb") as fh:
            return pickle.load(fh)


def run_barrier_training(spark, spec: dict[str, Any], *, workers: int, timeout_s: int = 3600) -> list[dict]:
    """Train on ``workers`` barrier tasks and return their results sorted by rank.

    Parameters
    ----------
    spec : dict
        The worker spec (see :func:`hitcast.model.trainloop.train`) without ``rank``/``workers``/
        ``tf_config``; it must pickle (the Petastorm converters do).
    workers : int
        Number of barrier tasks; Spark must have that many task slots.

    Raises
    ------
    TrainingError
        If Spark has fewer slots than ``workers``, a worker fails, or the workers' final weights differ.
    """
    sc = spark.sparkContext
    slots = sc.defaultParallelism
    if workers < 1 or workers > slots:
        raise TrainingError(f"train.workers={workers} but Spark has {slots} task slots; a barrier stage needs one "
                            "slot per worker (on a cluster: too few task slots left, e.g. after losing a worker)")
    payload = pickle.dumps(dict(spec, workers=workers))

    def task(_):
        from pyspark import BarrierTaskContext

        ctx = BarrierTaskContext.get()
        rank = ctx.partitionId()
        host = ctx.getTaskInfos()[rank].address.rsplit(":", 1)[0]
        entries = sorted((e.split(":", 2) for e in ctx.allGather(f"{rank}:{host}:{free_port()}")),
                         key=lambda e: int(e[0]))
        addresses = [f"{h}:{p}" for _, h, p in entries]
        worker_spec = pickle.loads(payload)
        worker_spec.update(rank=rank, tf_config=tf_config(addresses, rank))
        result = _run_worker(worker_spec, timeout_s)
        yield pickle.dumps(result)

    raw = sc.parallelize(range(workers), workers).barrier().mapPartitions(task).collect()
    results = sorted((pickle.loads(r) for r in raw), key=lambda r: r["rank"])
    checksums = {r["checksum"] for r in results}
    if len(checksums) != 1:
        raise TrainingError("workers ended with different weights: " +
                            ", ".join(f"worker {r['rank']}={r['checksum'][:12]}" for r in results))
    return results
