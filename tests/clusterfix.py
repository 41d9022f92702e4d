"""Shared pieces of the tests that run jobs through ``spark-submit`` on a standalone cluster on free ports.

The cluster itself (one per test session, :func:`standalone_cluster`) and the demo inputs the cluster modules
share are session fixtures in ``conftest.py``. Its applications run the environment ``make package`` packed,
unpacked once into the cluster's folder (``cluster.python_env``): nothing is shipped per application but the
library zip, unless an application asks for the archive (``python_env=""``, the shipped path that
``tests/test_cluster.py`` keeps tested)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from helpers import REPO
from hitcast.cluster import standalone
from hitcast.cluster.package import build_packages, unpack_environment
from hitcast.cluster.submit import start_submit
from hitcast.cluster.workers import kill_worker, start_worker
from hitcast.config import Config, load_config
from hitcast.daemons import group_members

#: Columns of a scoring run that differ between any two runs.
RUN_COLUMNS = ("run_id", "scored_at")
#: The generated catalog of the cluster tests (small: 60 tracks, 3 s clips).
DEMO_SETTINGS = ["demo.tracks=60", "demo.events_per_track=40", "demo.clip_seconds=3.0", "dsp.clip_seconds=3.0",
                 "demo.mc_draws=20"]


class Cluster:
    """The running cluster's configuration, the ``--set`` overrides that reach it, and the folder of the
    environment its applications run unless they ship the archive."""

    def __init__(self, cluster: Config, overrides: list[str], python_env: Path):
        self.cluster, self.cluster_overrides, self.python_env = cluster, overrides, python_env


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


def job_args(conf: str, root: Path, *settings: str) -> list[str]:
    """``--conf conf/<conf> --set ...`` for a job reading and writing under ``root``."""
    args = ["--conf", str(REPO / "conf" / conf)]
    for setting in (*path_overrides(root), *settings):
        args += ["--set", setting]
    return args


@contextmanager
def standalone_cluster(base: Path) -> Iterator[Cluster]:
    """A standalone cluster (conf/standalone.yaml on free ports, state under ``base``) whose applications run
    the packed environment unpacked once into ``base/python-env`` (``cluster.python_env``); afterwards it is
    stopped, no process of it is left, and its folders (that environment included) are removed."""
    t0 = time.perf_counter()
    print(f"packages: {build_packages()}")
    env, _ = unpack_environment(base / "python-env")
    print(f"environment unpacked into {env} in {time.perf_counter() - t0:.1f} s")
    master, master_ui, w0, w1, ui0, ui1 = free_ports(6)
    overrides = [f"cluster.dir={base}", f"cluster.master_port={master}", f"cluster.master_ui_port={master_ui}",
                 f"cluster.worker_ports=[{w0},{w1}]", f"cluster.worker_ui_ports=[{ui0},{ui1}]",
                 f"spark.master=spark://127.0.0.1:{master}", f"cluster.python_env={env}"]
    cfg = load_config(REPO / "conf" / "standalone.yaml", overrides)
    t0 = time.perf_counter()
    standalone.start_cluster(cfg)
    print(f"cluster up in {time.perf_counter() - t0:.1f} s")
    try:
        assert standalone.alive_workers(standalone.master_status("127.0.0.1", master_ui)) == 2
        yield Cluster(cfg, overrides, env)
    finally:
        info = standalone.read_pid_file(cfg)
        standalone.stop_cluster(cfg)
        pids = {d.pid for d in info.daemons} if info else set()
        assert group_members(pids) == [], "a cluster process is left"
        assert standalone.running_cluster(cfg) is None
        shutil.rmtree(standalone.cluster_dir(cfg) / "work", ignore_errors=True)   # unpacked environments (GBs)
        for scratch in (driver_scratch(cfg), standalone.cluster_dir(cfg) / "local", env):
            shutil.rmtree(scratch, ignore_errors=True)


def applications(cfg: Config) -> set[str]:
    """The ids of every application whose executors have a folder on some worker."""
    return {p.name for p in (standalone.cluster_dir(cfg) / "work").glob("worker-*/app-*")}


def application_executors(cfg: Config, app: str) -> list[Path]:
    """The executor folders (``work/worker-<i>/<app>/<executor id>``) of application ``app``."""
    return sorted((standalone.cluster_dir(cfg) / "work").glob(f"worker-*/{app}/*"))


def driver_scratch(cfg: Config) -> Path:
    """The temporary folder of the drivers the tests submit (``scratch`` of :func:`hitcast.cluster.submit.
    submit_env`): a driver a test kills leaves its copy of the environment here (2-3 GB), removed with the
    cluster, not in ``/tmp``."""
    return standalone.cluster_dir(cfg) / "driver-tmp"


def drop_ended_environments(cfg: Config) -> list[Path]:
    """Delete the unpacked environment (1.6 GB per executor) of every application the master no longer lists as
    active, keeping the executors' logs; returns the folders deleted.

    The workers' own cleanup (``cluster.app_data_ttl_s``) waits an hour; a test module submits a dozen
    applications, two executors each, and would otherwise fill a small disk before its end.
    """
    status = standalone.master_status(cfg.cluster.host, cfg.cluster.master_ui_port)
    if status is None:
        return []
    active = {app["id"] for app in status.get("activeapps", [])}
    dropped = []
    for env in (standalone.cluster_dir(cfg) / "work").glob("worker-*/app-*/*/environment"):
        if env.parts[-3] not in active:
            shutil.rmtree(env, ignore_errors=True)
            dropped.append(env)
    return dropped


def executor_logs(cfg: Config, worker: int) -> list[Path]:
    """The ``stderr`` files of every executor worker ``worker`` has run (newest application last)."""
    return sorted((standalone.cluster_dir(cfg) / "work" / f"worker-{worker}").glob("app-*/*/stderr"))


def tasks_started(cfg: Config, worker: int, *, known: set[Path] = frozenset()) -> int:
    """How many tasks executors on worker ``worker`` whose logs are not in ``known`` (the logs that existed
    before the job was submitted: :func:`executor_logs`) have started so far."""
    return sum(log.read_text(errors="replace").count("Running task")
               for log in executor_logs(cfg, worker) if log not in known)


def wait_for(condition: Callable[[], bool], *, timeout_s: float, what: str, proc=None, log: Path | None = None,
             poll_s: float = 0.2) -> float:
    """Poll ``condition`` until it holds; returns the seconds waited. Fails (with the end of ``log``) when
    ``timeout_s`` passes or ``proc`` exits first."""
    t0 = time.monotonic()
    while not condition():
        ended = proc is not None and proc.poll() is not None
        if ended or time.monotonic() - t0 > timeout_s:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:]) if log and log.exists() else ""
            reason = f"the job exited ({proc.returncode})" if ended else f"{timeout_s:.0f} s passed"
            raise AssertionError(f"{reason} before {what}\n{tail}")
        time.sleep(poll_s)
    return time.monotonic() - t0


def settings_args(settings: Sequence[str]) -> list[str]:
    out: list[str] = []
    for s in settings:
        out += ["--set", s]
    return out


@dataclass(frozen=True)
class KilledRun:
    """An application during which worker 1 was SIGKILLed: its id, exit status, driver log, seconds, and what
    ``before_kill`` returned just before the kill."""

    app: str
    code: int
    log: str
    seconds: float
    seen: Any


def kill_worker_during(cluster: Cluster, job: Path, args: Sequence[str], *, log_path: Path,
                       when: Callable[[], bool], what: str, timeout_s: float,
                       before_kill: Callable[[], Any] = lambda: None) -> KilledRun:
    """``spark-submit`` ``job`` to the cluster, SIGKILL worker 1 (its JVM, executor and Python workers) once
    ``when()`` holds, wait for the job to end however it ends, and start worker 1 again; the ended
    application's unpacked environments are dropped. Fails when the job ends before the kill."""
    earlier = applications(cluster.cluster)
    t0 = time.perf_counter()
    proc = start_submit(cluster.cluster, job, list(args), log_path=log_path, scratch=driver_scratch(cluster.cluster))
    killed = False
    try:
        wait_for(when, timeout_s=timeout_s, what=what, proc=proc, log=log_path, poll_s=0.05)
        seen = before_kill()
        assert proc.poll() is None, "the job ended before the kill"
        kill_worker(cluster.cluster, 1)
        killed = True
        code = proc.wait(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if killed:
            start_worker(cluster.cluster, 1)
        drop_ended_environments(cluster.cluster)
    (app,) = applications(cluster.cluster) - earlier
    return KilledRun(app, code, log_path.read_text(errors="replace"), time.perf_counter() - t0, seen)
