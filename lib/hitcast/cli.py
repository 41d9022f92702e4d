"""What every job in ``jobs/`` shares: the argument parser, logging and the session.

A job is::

    parser = job_parser("hitcast ingest", "Load raw catalog and events into Delta.")
    parser.add_argument(...)
    args = parser.parse_args()
    cfg = config_from_args(args)
    spark = build_session(cfg, "hitcast-ingest")
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from contextlib import contextmanager
from typing import Iterator

from hitcast.config import Config, load_config

log = logging.getLogger(__name__)

EPILOG = """configuration:
  --conf FILE        YAML file (default conf/local.yaml; conf/cluster.yaml is a cluster template)
  --set KEY=VALUE    override one key, repeatable, e.g. --set spark.master=local[2] --set train.epochs=2
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
