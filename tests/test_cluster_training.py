"""A training worker dies on a real standalone cluster (a master and two one-core workers on this machine).

One set of inputs (a generated catalog through ingest, features and spectrograms, in-process on local[2]: the
session's ``demo_inputs``, shared with the other cluster modules), copied, on the session's cluster; the jobs
run the environment installed for it (``cluster.python_env``). ``spark-submit jobs/train.py`` is started and
worker 1 (its JVM, its executor, the Python worker and the TensorFlow worker under it) is SIGKILLed once the
chief has written the checkpoint of epoch 1: the barrier stage cannot recover, the job must exit non-zero and
say which epoch its last checkpoint holds, where, and that a re-run resumes from it. Worker 1 is started again
and the same command re-run: it must log that it resumes from that checkpoint and register the version with
every epoch's history. (That a resumed run equals a straight one bit for bit is shown in-process, in
tests/test_training_checkpoint.py: two fresh jobs on the cluster already differ at epoch 1, so a straight
cluster run here would only be printed, not compared.)

Marked ``cluster``: ``make test-cluster`` runs it with the other cluster tests.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from pathlib import Path

import pytest

from clusterfix import DEMO_SETTINGS, drop_ended_environments, driver_scratch, job_args, wait_for
from helpers import REPO, make_config
from hitcast.cluster import standalone
from hitcast.cluster.submit import log_tail, start_submit, submit
from hitcast.cluster.workers import kill_worker, start_worker
from hitcast.lifecycle import registry
from hitcast.model import store
from hitcast.tables import read_table

pytestmark = pytest.mark.cluster

EPOCHS = 8
#: Small inputs; small batches so that an epoch takes several steps and the kill lands mid-training;
#: one Petastorm reader thread, which makes every epoch's data order a function of (seed, epoch, rank).
SETTINGS = [*DEMO_SETTINGS, f"train.epochs={EPOCHS}", "train.batch_size=4", "train.workers=2", "train.ensemble=1",
            "train.reader_workers=1"]
SUBMIT_TIMEOUT_S = 1500
FAILED = re.compile(r"training of (\S+) failed: (.*)\. the last checkpoint holds epoch (\d+) at (\S+); "
                    r"re-running the same command resumes from it")


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


def registered(spark, root: Path) -> dict:
    """The ``models`` row of the one version trained under ``root``, its metrics parsed."""
    rows = read_table(spark, make_config(root, *SETTINGS), "models").collect()
    assert len(rows) == 1
    return {"version": rows[0].model_version, "path": Path(rows[0].path), **json.loads(rows[0].metrics)}


@pytest.fixture(scope="module")
def cluster(session_cluster):
    """The session's standalone cluster: (configuration, ``--set`` overrides, installed environment)."""
    return session_cluster.cluster, session_cluster.cluster_overrides, session_cluster.python_env


@pytest.fixture(scope="module")
def inputs(demo_inputs) -> Path:
    """The session's demo catalog through the data stages (read-only: copy it)."""
    return demo_inputs[1]


def test_a_lost_training_worker_fails_the_job_and_the_rerun_resumes_to_the_same_model(spark, inputs, cluster,
                                                                                      tmp_path):
    cfg, overrides, python_env = cluster
    killed_root = tmp_path / "killed"
    shutil.copytree(inputs, killed_root, ignore=shutil.ignore_patterns("logs"))
    train = REPO / "jobs" / "train.py"
    times = {}

    failed_log = killed_root / "logs" / "train-killed.log"
    t0 = time.perf_counter()
    proc = start_submit(cfg, train, job_args("standalone.yaml", killed_root, *overrides, *SETTINGS),
                        log_path=failed_log, scratch=driver_scratch(cfg))
    killed = False
    try:
        wait_for(lambda: any((killed_root / "models").glob("*/checkpoints/epoch-*/state.json")),
                 timeout_s=SUBMIT_TIMEOUT_S, what="the chief's checkpoint of epoch 1", proc=proc, log=failed_log,
                 poll_s=0.05)
        workers = trainloop_processes(standalone.cluster_dir(cfg))
        kill_worker(cfg, 1)
        killed = True
        code = proc.wait(timeout=SUBMIT_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if killed:
            start_worker(cfg, 1)
    times["killed"] = time.perf_counter() - t0
    drop_ended_environments(cfg)
    text = failed_log.read_text(errors="replace")
    assert code != 0, log_tail(failed_log, 40)
    found = FAILED.search(text)
    assert found, log_tail(failed_log, 40)
    version, cause, epoch, where = found.group(1), found.group(2), int(found.group(3)), Path(found.group(4))
    print(f"failed run: exit {code}, last checkpoint epoch {epoch}; cause: {cause[:300]}")
    # both TensorFlow workers ran the environment installed for the cluster (cluster.python_env), not an
    # unpacked archive: nothing was shipped
    assert sorted(workers.values()) == [str(python_env / "bin" / "python")] * 2, workers
    assert 1 <= epoch < EPOCHS
    assert where == store.version_dir(make_config(killed_root, *SETTINGS), version) / "checkpoints" / \
        f"epoch-{epoch:04d}"
    assert (where / "state.json").is_file()
    # the surviving worker's TensorFlow process did not outlive its task
    wait_for(lambda: not trainloop_processes(standalone.cluster_dir(cfg)), timeout_s=120,
             what="no training worker process left in the executors")

    resumed_log = killed_root / "logs" / "train-resumed.log"
    t0 = time.perf_counter()
    submit(cfg, train, job_args("standalone.yaml", killed_root, *overrides, *SETTINGS), log_path=resumed_log,
           timeout_s=SUBMIT_TIMEOUT_S, scratch=driver_scratch(cfg))
    times["resumed"] = time.perf_counter() - t0
    resumed_text = resumed_log.read_text(errors="replace")
    line = re.search(rf"resuming {re.escape(version)} from the checkpoint of epoch (\d+) \((\S+)\)", resumed_text)
    assert line, log_tail(resumed_log, 40)
    print("spark-submit jobs/train.py: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))

    resumed = registered(spark, killed_root)
    print(f"resumed {resumed['checksum'][:16]} from epoch {resumed['resumed_from_epoch']}, best epoch "
          f"{resumed['best_epoch']}, val AUC {resumed['validation'].get('val_auc')}")
    assert resumed["version"] == version
    assert resumed["resumed_from_epoch"] == int(line.group(1)) >= epoch
    assert len(set(resumed["worker_checksums"])) == 1
    assert [h["epoch"] for h in resumed["history"]] == list(range(1, EPOCHS + 1))
    assert not (resumed["path"] / "checkpoints").exists()
