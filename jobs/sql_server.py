"""The analysts' SQL endpoint: start, stop, refresh or check Spark's Thrift JDBC/ODBC server over the Delta tables."""
from __future__ import annotations

import logging
import sys

from hitcast.cli import config_from_args, job_parser
from hitcast.errors import HitcastError

log = logging.getLogger("hitcast.jobs.sql_server")


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(
        "sql_server.py",
        "The SQL endpoint for analysts: Spark's Thrift JDBC/ODBC server (from the pip pyspark) on sql.host:sql.port\n"
        "(127.0.0.1:10000 by default), with its metastore under sql.metastore_dir.\n"
        "  start    start it in the background, wait until it accepts connections, register every Delta table of\n"
        "           the warehouse in sql.tables_database (by location) and create the views in sql.views_database\n"
        "  stop     stop it (the PID file under sql.metastore_dir names it)\n"
        "  refresh  register new tables and re-create the views on the running server\n"
        "  status   say whether it runs, and where\n"
        "Connect with: beeline -u jdbc:hive2://127.0.0.1:10000 -e 'SELECT * FROM hitcast.top_tracks LIMIT 5'")
    parser.add_argument("action", choices=["start", "stop", "refresh", "status"])
    parser.add_argument("--port", type=int, default=None, help="listen on this port instead of sql.port")
    args = parser.parse_args(argv)
    from hitcast.sql import server

    try:
        cfg = config_from_args(args)
        if args.action == "start":
            info = server.start_server(cfg, port=args.port)
            log.info("summary: SQL endpoint %s (pid %d) up in %.1f s; stop it with make sql-server-stop",
                     info.jdbc_url, info.pid, info.start_s)
        elif args.action == "stop":
            stopped = server.stop_server(cfg)
            log.info("summary: %s", f"stopped pid {stopped.pid}" if stopped else "nothing was running")
        elif args.action == "refresh":
            running = server.running_server(cfg)
            if running is None:
                raise HitcastError(f"no SQL endpoint runs for {server.server_dir(cfg)}: make sql-server")
            log.info("summary: %s", server.refresh(cfg, port=running.port))
        else:
            running = server.running_server(cfg)
            log.info("summary: %s", f"running: {running.jdbc_url} (pid {running.pid}, log {running.log})"
                     if running else "not running")
    except HitcastError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
