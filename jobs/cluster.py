"""A Spark standalone cluster on this machine (start, stop, status) and the packages spark-submit ships."""
from __future__ import annotations

import logging
import sys

from hitcast.cli import config_from_args, job_parser
from hitcast.errors import HitcastError

log = logging.getLogger("hitcast.jobs.cluster")


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(
        "cluster.py",
        "A Spark standalone cluster on this machine, from the pip pyspark (conf/standalone.yaml):\n"
        "  up       start a master and one worker per cluster.worker_ports entry on cluster.host; refuse a port in\n"
        "           use; wait until the master reports every worker ALIVE (PID file and logs under cluster.dir)\n"
        "  down     stop them (every process they started, executors included)\n"
        "  status   say whether it runs, and where\n"
        "  package  dist/hitcast.zip (the library, for --py-files) and dist/hitcast-env.tar.gz (the Python\n"
        "           environment packed by venv-pack, for --archives dist/hitcast-env.tar.gz#environment)\n"
        "  unpack   unpack dist/hitcast-env.tar.gz into --dest DIR (absolute; skipped when DIR holds it already):\n"
        "           run it on every node, then --set cluster.python_env=DIR and nothing is shipped per job\n"
        "Submit a job with the command in the README, 'Running a job on a cluster with spark-submit'.")
    parser.add_argument("action", choices=["up", "down", "status", "package", "unpack"])
    parser.add_argument("--dest", help="unpack: the folder to unpack the environment into")
    args = parser.parse_args(argv)
    from hitcast.cluster import package, standalone

    try:
        cfg = config_from_args(args)
        if args.action == "up":
            info = standalone.start_cluster(cfg)
            log.info("summary: cluster %s up in %.1f s, web UI %s; stop it with make cluster-down",
                     info.master_url, info.start_s, info.ui_url)
        elif args.action == "down":
            stopped = standalone.stop_cluster(cfg)
            log.info("summary: %s", f"stopped {stopped.master_url}" if stopped else "nothing was running")
        elif args.action == "status":
            running = standalone.running_cluster(cfg)
            status = standalone.master_status(cfg.cluster.host, cfg.cluster.master_ui_port) if running else None
            log.info("summary: %s", f"running: {running.master_url}, {standalone.alive_workers(status)} workers "
                     f"ALIVE, web UI {running.ui_url}" if running else "not running")
        elif args.action == "unpack":
            if not args.dest:
                parser.error("unpack needs --dest DIR")
            dest, reused = package.unpack_environment(args.dest)
            log.info("summary: %s %s; submit with --set cluster.python_env=%s", dest,
                     "already held the environment" if reused else "holds the environment", dest)
        else:
            log.info("summary: %s", package.build_packages(cfg))
    except HitcastError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
