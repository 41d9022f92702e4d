"""Start and stop the SQL endpoint: Spark's Thrift JDBC/ODBC server (``HiveThriftServer2``), from the pip pyspark.

The server is one ``spark-submit`` process (a JVM) running in the background, in its own session (process group):

- bound to ``sql.host`` (loopback by default) on ``sql.port``; the Spark UI is off and the driver binds loopback;
- Delta on (the SQL extension and catalog, the project's Delta jars), session time zone UTC;
- its metastore (embedded Derby), warehouse folder, log and PID file under ``sql.metastore_dir`` (under the data
  root), so the jobs, which read tables by path, never touch it;
- the views in the global temporary database ``sql.views_database`` (:mod:`hitcast.sql.views`).

:func:`start_server` refuses a port already in use, waits until the port accepts connections, then registers
the tables and views (:mod:`hitcast.sql.register`). :func:`stop_server` stops the process group the PID file names.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import re
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from hitcast.config import Config
from hitcast.daemons import log_tail, spawn, stop_groups, write_pid_file
from hitcast.daemons import read_pid_file as read_json_pid_file
from hitcast.errors import ConfigError, HitcastError
from hitcast.ports import port_in_use
from hitcast.spark import delta_jar_files, spark_home

log = logging.getLogger(__name__)

MAIN_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
#: Authentication settings under which the server checks nobody (so it may only listen on loopback).
OPEN_AUTH = ("NONE", "NOSASL")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class ServerInfo:
    """A running server, as its PID file records it."""

    pid: int
    host: str
    port: int
    log: str
    started_at: str
    start_s: float = 0.0

    @property
    def jdbc_url(self) -> str:
        """``jdbc:hive2://host:port/`` for beeline and JDBC tools."""
        return f"jdbc:hive2://{self.host}:{self.port}/"


def server_dir(cfg: Config) -> Path:
    """``sql.metastore_dir`` resolved against the data root."""
    return cfg.path(cfg.sql.metastore_dir)


def pid_file(cfg: Config) -> Path:
    return server_dir(cfg) / "sql-server.pid"


def check_settings(cfg: Config) -> None:
    """Refuse database names Spark would mangle, and listening beyond loopback with no authentication.

    Raises
    ------
    ConfigError
        Naming the key.
    """
    s = cfg.sql
    for key in ("tables_database", "views_database"):
        if not _NAME.match(getattr(s, key)):
            raise ConfigError(f"configuration key sql.{key}: {getattr(s, key)!r} must be lower case letters, "
                              "digits and _")
    if s.tables_database == s.views_database or "default" in (s.tables_database, s.views_database):
        raise ConfigError("configuration keys sql.tables_database and sql.views_database must differ from each "
                          "other and from 'default'")
    auth = str(s.hiveconf.get("hive.server2.authentication", "NONE")).upper()
    if not is_loopback(s.host) and auth in OPEN_AUTH:
        raise ConfigError(f"configuration key sql.host: {s.host} is not a loopback address, and "
                          f"hive.server2.authentication is {auth}: anyone who reaches the port could query every "
                          "table. Turn on authentication in sql.hiveconf (README, 'Analysts: SQL endpoint')")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    return host == "localhost" or host == "::1" or host.startswith("127.")


def server_settings(cfg: Config) -> dict[str, str]:
    """The server's Spark settings: the jobs' settings (:func:`hitcast.spark.session_settings`), then the
    server's own, then ``sql.conf``."""
    from hitcast.spark import session_settings

    base = server_dir(cfg)
    jars = delta_jar_files(cfg)
    settings = {k: str(v) for k, v in session_settings(cfg, "hitcast-sql-endpoint").items()
                if k not in ("spark.jars.packages", "spark.jars.ivy", "spark.pyspark.python",
                             "spark.pyspark.driver.python")}
    settings.update({
        "spark.master": cfg.sql.master,
        "spark.driver.memory": cfg.sql.driver_memory,
        "spark.jars": ",".join(str(j) for j in jars),
        # also on the driver's own class path: the Thrift handler threads that open a session (and run beeline's
        # `USE default`) do not see spark.jars, and fail with "Cannot find catalog plugin class ... DeltaCatalog"
        "spark.driver.extraClassPath": os.pathsep.join(str(j) for j in jars),
        "spark.ui.enabled": "false",
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(base / "spark-warehouse"),
        "spark.sql.globalTempDatabase": cfg.sql.views_database,
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={base / 'metastore_db'};create=true",
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={base}",
    })
    if is_loopback(cfg.sql.host):
        settings.update({"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"})
    settings.update({str(k): str(v) for k, v in cfg.sql.conf.items()})
    return settings


def server_command(cfg: Config, port: int) -> list[str]:
    """The ``spark-submit`` command line of the server on ``port``."""
    cmd = [str(spark_home() / "bin" / "spark-submit"), "--class", MAIN_CLASS, "--name", "hitcast-sql-endpoint"]
    for key, value in server_settings(cfg).items():
        cmd += ["--conf", f"{key}={value}"]
    cmd.append("spark-internal")
    hive = {"hive.server2.thrift.bind.host": cfg.sql.host, "hive.server2.thrift.port": str(port)}
    hive.update({str(k): str(v) for k, v in cfg.sql.hiveconf.items()})
    for key, value in hive.items():
        cmd += ["--hiveconf", f"{key}={value}"]
    return cmd


def accepts(host: str, port: int) -> bool:
    """True when ``host:port`` accepts a TCP connection."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def wait_until_accepting(proc: subprocess.Popen, host: str, port: int, *, timeout_s: float, log_path: Path) -> None:
    """Wait until ``host:port`` accepts connections while ``proc`` runs.

    Raises
    ------
    HitcastError
        When the process exits first or ``timeout_s`` passes (the server is stopped then), with its log's tail.
    """
    deadline = time.monotonic() + timeout_s
    while not accepts(host, port):
        if proc.poll() is not None:
            raise HitcastError(f"the SQL endpoint exited with status {proc.returncode} before listening on "
                               f"{host}:{port}; its log {log_path} ends:\n{log_tail(log_path, 15)}")
        if time.monotonic() > deadline:
            _terminate(proc.pid, timeout_s=30)
            raise HitcastError(f"the SQL endpoint did not listen on {host}:{port} within {timeout_s:.0f} s "
                               f"(sql.start_timeout_s); stopped it. Its log {log_path} ends:\n{log_tail(log_path, 15)}")
        time.sleep(0.5)


def read_pid_file(cfg: Config) -> ServerInfo | None:
    """The server the PID file records, if the file exists."""
    return read_json_pid_file(pid_file(cfg), lambda data: ServerInfo(**data))


def is_server_process(pid: int) -> bool:
    """True when ``pid`` runs, and is a Thrift server (a recycled PID is not)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True          # no /proc (not Linux): trust the PID file
    return MAIN_CLASS in cmdline


def running_server(cfg: Config) -> ServerInfo | None:
    """The server this configuration started, if it still runs (a stale PID file is removed)."""
    info = read_pid_file(cfg)
    if info is None:
        return None
    if is_server_process(info.pid):
        return info
    log.info("removing the stale PID file %s (process %d is gone)", pid_file(cfg), info.pid)
    pid_file(cfg).unlink(missing_ok=True)
    return None


def launch(cfg: Config, port: int) -> tuple[subprocess.Popen, Path]:
    """Start the server process in its own session; its output goes to ``sql-server.log``."""
    base = server_dir(cfg)
    base.mkdir(parents=True, exist_ok=True)
    log_path = base / "sql-server.log"
    env = dict(os.environ, SPARK_HOME=str(spark_home()))
    if is_loopback(cfg.sql.host):
        env["SPARK_LOCAL_IP"] = "127.0.0.1"
    proc = spawn(server_command(cfg, port), cwd=base, env=env, log_path=log_path)
    return proc, log_path


def start_server(cfg: Config, *, port: int | None = None, register: bool = True) -> ServerInfo:
    """Start the SQL endpoint, wait until it accepts connections, register the tables and views.

    Parameters
    ----------
    port
        Default ``sql.port``.
    register
        Register the tables and views once it listens (:func:`hitcast.sql.register.register_all`).

    Raises
    ------
    HitcastError
        When this configuration's server already runs, the port is in use, the server does not come up, or the
        registration fails (the server is stopped again then).
    """
    check_settings(cfg)
    port = int(port or cfg.sql.port)
    host = cfg.sql.host
    other = running_server(cfg)
    if other is not None:
        raise HitcastError(f"the SQL endpoint of {server_dir(cfg)} already runs (pid {other.pid}, "
                           f"{other.host}:{other.port}); stop it first: make sql-server-stop")
    if port_in_use(host, port):
        raise HitcastError(f"port {port} on {host} is in use (sql.port): stop what listens there, or choose "
                           f"another port, e.g. --set sql.port={port + 1}")
    t0 = time.perf_counter()
    proc, log_path = launch(cfg, port)
    info = ServerInfo(proc.pid, host, port, str(log_path), dt.datetime.now(dt.timezone.utc).isoformat())
    try:
        wait_until_accepting(proc, host, port, timeout_s=cfg.sql.start_timeout_s, log_path=log_path)
        info = ServerInfo(**{**asdict(info), "start_s": round(time.perf_counter() - t0, 1)})
        write_pid_file(pid_file(cfg), info)
        log.info("SQL endpoint listening on %s:%d after %.1f s (pid %d, log %s)", host, port, info.start_s,
                 proc.pid, log_path)
        if register:
            refresh(cfg, port=port)
    except BaseException:
        _terminate(proc.pid, timeout_s=30)
        pid_file(cfg).unlink(missing_ok=True)
        raise
    return info


def refresh(cfg: Config, *, port: int | None = None):
    """(Re)register the tables and views on the running server (after a new table appeared, say).

    Returns
    -------
    hitcast.sql.register.Registration
    """
    from hitcast.sql.client import client_options, connect
    from hitcast.sql.register import register_all

    options = client_options(cfg)
    if port is not None:
        options["port"] = int(port)
    with connect(**options) as conn:
        return register_all(conn, cfg)


def _terminate(pid: int, *, timeout_s: float) -> None:
    """Stop the process group ``pid`` leads (SIGTERM, SIGKILL after ``timeout_s``)."""
    left = stop_groups([pid], timeout_s=timeout_s, what="SQL endpoint")
    if left:
        log.warning("SQL endpoint processes %s are still alive after SIGKILL", left)


def stop_server(cfg: Config, *, timeout_s: float = 60) -> ServerInfo | None:
    """Stop the server this configuration's PID file names (SIGTERM to its process group, SIGKILL after
    ``timeout_s``); ``None`` when none runs."""
    info = running_server(cfg)
    if info is None:
        log.info("no SQL endpoint runs for %s", server_dir(cfg))
        return None
    _terminate(info.pid, timeout_s=timeout_s)
    pid_file(cfg).unlink(missing_ok=True)
    log.info("stopped the SQL endpoint (pid %d, %s:%d)", info.pid, info.host, info.port)
    return info
