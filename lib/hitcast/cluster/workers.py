"""One worker of the standalone cluster at a time: kill it (a machine that dies) and start it again.

A worker's executors run in the worker's process group (:mod:`hitcast.cluster.standalone` starts every daemon
in its own session), so :func:`kill_worker` sends SIGKILL to that group: the worker JVM, its executor JVMs and
their Python workers die at once, with no shutdown hook, as when a machine loses power. The master and the
driver learn of it when their connections to the dead JVMs close.
"""
from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import replace

from hitcast.cluster.standalone import Daemon, _launch, _write_pid_file, alive_workers, master_status, running_cluster
from hitcast.config import Config
from hitcast.daemons import group_members, reap
from hitcast.errors import HitcastError

log = logging.getLogger(__name__)


def _worker(cfg: Config, index: int) -> tuple[object, Daemon]:
    info = running_cluster(cfg)
    if info is None:
        raise HitcastError("no cluster runs for this configuration: make cluster-up")
    name = f"worker-{index}"
    for d in info.daemons:
        if d.role == name:
            return info, d
    raise HitcastError(f"the cluster has no {name} (workers: "
                       f"{', '.join(d.role for d in info.daemons if d.role != 'master')})")


def kill_worker(cfg: Config, index: int, *, timeout_s: float = 30) -> list[int]:
    """SIGKILL worker ``index``'s process group (worker JVM, executors, Python workers); wait until it is gone.

    Returns
    -------
    list of int
        The PIDs that were killed.

    Raises
    ------
    HitcastError
        When no cluster runs, it has no such worker, or a process survives SIGKILL for ``timeout_s``.
    """
    _, daemon = _worker(cfg, index)
    pids = group_members({daemon.pid})
    try:
        os.killpg(daemon.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout_s
    while group_members({daemon.pid}):
        reap()
        if time.monotonic() > deadline:
            raise HitcastError(f"worker-{index} processes {group_members({daemon.pid})} survived SIGKILL")
        time.sleep(0.1)
    log.warning("killed worker-%d: pids %s (SIGKILL to its process group)", index, pids)
    return pids


def start_worker(cfg: Config, index: int) -> Daemon:
    """Start worker ``index`` again (after :func:`kill_worker`) and wait until the master reports every worker
    ALIVE; the PID file records the new process.

    Raises
    ------
    HitcastError
        When the worker still runs, or the master does not report it ALIVE within ``cluster.start_timeout_s``.
    """
    info, old = _worker(cfg, index)
    if group_members({old.pid}):
        raise HitcastError(f"worker-{index} (pid {old.pid}) still runs")
    new = _launch(cfg, "worker", index)
    info = replace(info, daemons=tuple(new if d.role == old.role else d for d in info.daemons))
    _write_pid_file(cfg, info)
    want = len(cfg.cluster.worker_ports)
    deadline = time.monotonic() + cfg.cluster.start_timeout_s
    while alive_workers(master_status(cfg.cluster.host, cfg.cluster.master_ui_port)) < want:
        if time.monotonic() > deadline:
            raise HitcastError(f"worker-{index} did not come back ALIVE within {cfg.cluster.start_timeout_s} s; "
                               f"see {new.log}")
        time.sleep(0.5)
    log.info("worker-%d started again (pid %d)", index, new.pid)
    return new
