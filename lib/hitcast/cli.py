"""What every job in ``jobs/`` shares: the argument parser, logging, the session and the exit status.

Every job has the same shape: parse arguments, then hand one library entry point to :func:`run_stage`,
which loads the configuration, builds the session, calls the entry point, logs the summary it returns,
stops the session and returns the exit status::

    def main(argv: list[str] | None = None) -> int:
        parser = job_parser("ingest.py", "Load raw catalog and events into Delta.")
        args = parser.parse_args(argv)
        return run_stage(args, "hitcast-ingest", run_ingest)
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from hitcast.config import Config, load_config
from hitcast.errors import HitcastError

log = logging.getLogger(__name__)

EPILOG = """configuration:
  --conf FILE        YAML file (default conf/local.yaml; conf/cluster.yaml is a cluster template)
  --set KEY=VALUE    override one key, repeatable, e.g. --set spark.master=local[2] --set train.epochs=2

exit status: 0 done, 2 a hitcast error (bad input or configuration; the message says which), 1 a crash
"""


def job_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An ``argparse`` parser with the options every hitcast job takes."""
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conf", default=os.environ.get("HITCAST_CONF"),
                        help="configuration YAML (default: $HITCAST_CONF or conf/local.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a configuration key (repeatable)")
    parser.add_argument("--log-level", default=os.environ.get("HITCAST_LOG_LEVEL", "INFO"),
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="logging level (default INFO)")
    return parser


def setup_logging(level: str = "INFO") -> None:
    """Log to stderr with timestamps; quiet the chattiest third-party loggers."""
    logging.basicConfig(level=getattr(logging, level), stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("py4j", "numba", "matplotlib", "petastorm", "absl", "h5py", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def config_from_args(args: argparse.Namespace) -> Config:
    """Set up logging and load the configuration the parsed arguments name."""
    setup_logging(args.log_level)
    return load_config(args.conf, args.overrides)


@contextmanager
def step(name: str) -> Iterator[None]:
    """Log the start and the wall time of a long step."""
    log.info("%s ...", name)
    t0 = time.perf_counter()
    yield
    log.info("%s done in %.1f s", name, time.perf_counter() - t0)


def run_stage(args: argparse.Namespace, app_name: str, entry: Callable[[Any, Config], Any],
              *, configure: Callable[[Config], Config] | None = None) -> int:
    """Run one stage: configuration, session, ``entry(spark, cfg)``, its summary logged, session stopped.

    Parameters
    ----------
    args
        Parsed :func:`job_parser` arguments (``--conf``, ``--set``, ``--log-level``).
    app_name
        The Spark application name.
    entry
        The stage's library entry point; it returns a typed summary whose ``str`` is logged.
    configure
        Optional: the loaded configuration with job-specific arguments applied (a new, frozen ``Config``).

    Returns
    -------
    int
        0 on success, 2 when a :class:`~hitcast.errors.HitcastError` stopped the stage (logged without a
        traceback: its message names the file, column or key).
    """
    from hitcast.spark import build_session

    try:
        cfg = config_from_args(args)
        if configure is not None:
            cfg = configure(cfg)
    except HitcastError as exc:
        log.error("%s", exc)
        return 2
    spark = build_session(cfg, app_name)
    try:
        with step(app_name):
            summary = entry(spark, cfg)
        log.info("summary: %s", summary)
        return 0
    except HitcastError as exc:
        log.error("%s", exc)
        return 2
    finally:
        spark.stop()
