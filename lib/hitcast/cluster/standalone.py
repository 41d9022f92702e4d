"""A Spark standalone cluster on this machine: one master and ``len(cluster.worker_ports)`` workers.

Each daemon is ``bin/spark-class org.apache.spark.deploy.master.Master`` (or ``...worker.Worker``) of the pip
pyspark (which has no ``sbin/`` start scripts), started in the background in its own session (process group),
bound to ``cluster.host`` on the ports of the ``cluster`` section. Under ``cluster.dir``: ``cluster.json`` (the
PID file: PIDs, ports, logs), one log per daemon and the workers' work folders (executor logs and the archives
they unpack).

:func:`start_cluster` refuses a port in use (the message names it and its key), then waits until the master's
``/json/`` reports every worker ALIVE. :func:`stop_cluster` stops every process group it started (executors run
in their worker's group) and checks that none is left.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from hitcast.config import Config
from hitcast.daemons import group_members, is_running, log_tail, spawn, stop_groups, write_pid_file
from hitcast.daemons import read_pid_file as read_json_pid_file
from hitcast.errors import ConfigError, HitcastError
from hitcast.ports import port_in_use
from hitcast.spark import spark_home

log = logging.getLogger(__name__)

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


@dataclass(frozen=True)
class Daemon:
    """One master or worker process as the PID file records it."""

    role: str
    pid: int
    port: int
    ui_port: int
    log: str


@dataclass(frozen=True)
class ClusterInfo:
    """A running cluster: its master URL, master web UI and daemons."""

    master_url: str
    ui_url: str
    daemons: tuple[Daemon, ...]
    start_s: float = 0.0


def cluster_dir(cfg: Config) -> Path:
    """``cluster.dir`` resolved against the data root."""
    return cfg.path(cfg.cluster.dir)


def pid_file(cfg: Config) -> Path:
    return cluster_dir(cfg) / "cluster.json"


def master_url(cfg: Config) -> str:
    """``spark://host:master_port``: what ``spark.master`` / ``--master`` must say."""
    return f"spark://{cfg.cluster.host}:{cfg.cluster.master_port}"


def named_ports(cfg: Config) -> list[tuple[str, int]]:
    """Every port the cluster listens on, with its configuration key.

    Raises
    ------
    ConfigError
        When the worker lists differ in length, a port repeats, or there is no worker.
    """
    c = cfg.cluster
    if not c.worker_ports or len(c.worker_ports) != len(c.worker_ui_ports):
        raise ConfigError(f"configuration keys cluster.worker_ports ({c.worker_ports}) and cluster.worker_ui_ports "
                          f"({c.worker_ui_ports}) must name one port each per worker, at least one worker")
    ports = [("cluster.master_port", c.master_port), ("cluster.master_ui_port", c.master_ui_port)]
    ports += [(f"cluster.worker_ports[{i}]", p) for i, p in enumerate(c.worker_ports)]
    ports += [(f"cluster.worker_ui_ports[{i}]", p) for i, p in enumerate(c.worker_ui_ports)]
    seen: dict[int, str] = {}
    for key, port in ports:
        if port in seen:
            raise ConfigError(f"configuration key {key}: port {port} is also {seen[port]}")
        seen[port] = key
    return ports


def check_ports_free(cfg: Config) -> None:
    """Refuse to start when any configured port is taken.

    Raises
    ------
    HitcastError
        Naming the first port in use and its configuration key.
    """
    for key, port in named_ports(cfg):
        if port_in_use(cfg.cluster.host, port):
            raise HitcastError(f"port {port} on {cfg.cluster.host} ({key}) is in use: stop what listens there "
                               f"(make cluster-down, if it is this cluster) or choose another port, "
                               f"e.g. --set {key.split('[')[0]}=...")


def check_master_setting(cfg: Config) -> None:
    """Warn when ``spark.master`` names a standalone master other than this cluster's."""
    if cfg.spark.master.startswith("spark://") and cfg.spark.master != master_url(cfg):
        log.warning("spark.master is %s but this cluster's master is %s (cluster.host, cluster.master_port)",
                    cfg.spark.master, master_url(cfg))


def daemon_command(cfg: Config, role: str, index: int = 0) -> list[str]:
    """The ``spark-class`` command line of the master (``role='master'``) or worker ``index``."""
    c = cfg.cluster
    spark_class = str(spark_home() / "bin" / "spark-class")
    if role == "master":
        return [spark_class, MASTER_CLASS, "--host", c.host, "--port", str(c.master_port),
                "--webui-port", str(c.master_ui_port)]
    return [spark_class, WORKER_CLASS, "--host", c.host, "--port", str(c.worker_ports[index]),
            "--webui-port", str(c.worker_ui_ports[index]), "--cores", str(c.worker_cores),
            "--memory", c.worker_memory, "--work-dir", str(cluster_dir(cfg) / "work" / f"worker-{index}"),
            master_url(cfg)]


def daemon_env(cfg: Config) -> dict[str, str]:
    """The daemons' environment: the pip pyspark as ``SPARK_HOME``, loopback, a modest daemon heap, workers
    that delete ended applications' folders after ``cluster.app_data_ttl_s``, and their scratch space
    (``SPARK_LOCAL_DIRS``: shuffle files, the executors' cache of fetched files) under ``cluster.dir/local``,
    not ``/tmp``, where an executor that is killed would leave its copy of the shipped environment.

    Executors inherit it; the developer's ``PYSPARK_PYTHON`` is dropped, so executors run the interpreter the
    job names (``spark.pyspark.python``, the shipped environment under ``spark-submit``).
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")}
    env.update(SPARK_HOME=str(spark_home()), SPARK_LOCAL_IP=cfg.cluster.host,
               SPARK_DAEMON_MEMORY=cfg.cluster.daemon_memory, SPARK_LOG_DIR=str(cluster_dir(cfg)),
               SPARK_LOCAL_DIRS=str(cluster_dir(cfg) / "local"),
               SPARK_WORKER_OPTS=f"-Dspark.worker.cleanup.enabled=true -Dspark.worker.cleanup.interval=600 "
                                 f"-Dspark.worker.cleanup.appDataTtl={cfg.cluster.app_data_ttl_s}")
    return env


def _launch(cfg: Config, role: str, index: int = 0) -> Daemon:
    name = "master" if role == "master" else f"worker-{index}"
    log_path = cluster_dir(cfg) / f"{name}.log"
    proc = spawn(daemon_command(cfg, role, index), cwd=cluster_dir(cfg), env=daemon_env(cfg), log_path=log_path)
    c = cfg.cluster
    port, ui = ((c.master_port, c.master_ui_port) if role == "master"
                else (c.worker_ports[index], c.worker_ui_ports[index]))
    return Daemon(name, proc.pid, port, ui, str(log_path))


def master_status(host: str, ui_port: int) -> dict | None:
    """The master's ``/json/`` status, or ``None`` while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://{host}:{ui_port}/json/", timeout=2) as response:
            return json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def alive_workers(status: dict | None) -> int:
    """How many workers the master's status reports ALIVE."""
    return sum(1 for w in (status or {}).get("workers", []) if w.get("state") == "ALIVE")


def _wait_alive(cfg: Config, daemons: list[Daemon]) -> None:
    want = len(cfg.cluster.worker_ports)
    deadline = time.monotonic() + cfg.cluster.start_timeout_s
    while alive_workers(master_status(cfg.cluster.host, cfg.cluster.master_ui_port)) < want:
        for d in daemons:
            if not is_running(d.pid):
                raise HitcastError(f"the cluster's {d.role} (pid {d.pid}) exited while starting; its log "
                                   f"{d.log} ends:\n{log_tail(d.log)}")
        if time.monotonic() > deadline:
            raise HitcastError(f"the master did not report {want} workers ALIVE within "
                               f"{cfg.cluster.start_timeout_s} s (cluster.start_timeout_s); logs in {cluster_dir(cfg)}")
        time.sleep(0.5)


def start_cluster(cfg: Config) -> ClusterInfo:
    """Start the master and the workers, and wait until the master reports every worker ALIVE.

    The previous run's work and scratch folders are removed first (they hold unpacked environments).

    Returns
    -------
    ClusterInfo
        Also written to ``<cluster.dir>/cluster.json``.

    Raises
    ------
    HitcastError
        When this cluster already runs, a port is in use, or it does not come up (it is stopped again then).
    """
    running = running_cluster(cfg)
    if running is not None:
        raise HitcastError(f"the cluster of {cluster_dir(cfg)} already runs ({running.master_url}); "
                           "stop it first: make cluster-down")
    check_ports_free(cfg)
    check_master_setting(cfg)
    base = cluster_dir(cfg)
    for old in ("work", "local"):
        shutil.rmtree(base / old, ignore_errors=True)
    (base / "local").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    daemons = [_launch(cfg, "master")]
    info = ClusterInfo(master_url(cfg), f"http://{cfg.cluster.host}:{cfg.cluster.master_ui_port}", ())
    try:
        daemons += [_launch(cfg, "worker", i) for i in range(len(cfg.cluster.worker_ports))]
        info = ClusterInfo(info.master_url, info.ui_url, tuple(daemons))
        _write_pid_file(cfg, info)
        _wait_alive(cfg, daemons)
    except BaseException:
        _stop_daemons(daemons, timeout_s=30)
        pid_file(cfg).unlink(missing_ok=True)
        raise
    info = ClusterInfo(info.master_url, info.ui_url, tuple(daemons), round(time.perf_counter() - t0, 1))
    _write_pid_file(cfg, info)
    log.info("cluster up in %.1f s: master %s (UI %s), %d workers ALIVE", info.start_s, info.master_url,
             info.ui_url, len(daemons) - 1)
    return info


def _write_pid_file(cfg: Config, info: ClusterInfo) -> None:
    write_pid_file(pid_file(cfg), info)


def read_pid_file(cfg: Config) -> ClusterInfo | None:
    """The cluster the PID file records, if the file exists."""
    return read_json_pid_file(pid_file(cfg), lambda data: ClusterInfo(
        data["master_url"], data["ui_url"], tuple(Daemon(**d) for d in data["daemons"]), data.get("start_s", 0.0)))


def running_cluster(cfg: Config) -> ClusterInfo | None:
    """The cluster this configuration started, if any of its daemons still runs (a stale PID file is removed)."""
    info = read_pid_file(cfg)
    if info is None:
        return None
    if group_members({d.pid for d in info.daemons}):
        return info
    log.info("removing the stale PID file %s (no process of it is left)", pid_file(cfg))
    pid_file(cfg).unlink(missing_ok=True)
    return None


def _stop_daemons(daemons: list[Daemon] | tuple[Daemon, ...], *, timeout_s: float) -> list[int]:
    """Stop every daemon's process group (workers first); returns the PIDs still alive (none, normally)."""
    ordered = sorted(daemons, key=lambda d: d.role == "master")
    return stop_groups([d.pid for d in ordered], timeout_s=timeout_s, what="cluster")


def stop_cluster(cfg: Config, *, timeout_s: float = 30) -> ClusterInfo | None:
    """Stop the cluster the PID file names; ``None`` when none runs.

    Raises
    ------
    HitcastError
        When a process of it is still alive after SIGKILL (the message names the PIDs).
    """
    info = running_cluster(cfg)
    if info is None:
        log.info("no cluster runs for %s", cluster_dir(cfg))
        return None
    left = _stop_daemons(info.daemons, timeout_s=timeout_s)
    if left:
        raise HitcastError(f"cluster processes {left} are still alive after SIGKILL")
    pid_file(cfg).unlink(missing_ok=True)
    log.info("stopped the cluster %s (%d daemons)", info.master_url, len(info.daemons))
    return info
