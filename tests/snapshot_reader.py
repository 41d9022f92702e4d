"""A separate process that reads a Delta table over and over (``tests/test_end_to_end.py``'s reader during
rescoring): each read is one query, and it prints one JSON line per read with the rows per ``run_id`` it saw.

Usage: ``python tests/snapshot_reader.py TABLE STOP_FILE`` (stops after the read that follows STOP_FILE).
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from hitcast.config import load_config
from hitcast.spark import build_session


def main(argv: list[str]) -> int:
    table, stop = argv[0], Path(argv[1])
    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(None, ["spark.master=local[1]", "spark.conf.spark.ui.enabled=false",
                             "spark.shuffle_partitions=1"])
    spark = build_session(cfg, "hitcast-snapshot-reader")
    spark.sparkContext.setLogLevel("ERROR")
    while True:
        done = stop.exists()
        rows = spark.read.format("delta").load(table).groupBy("run_id").count().collect()
        print(json.dumps({r["run_id"]: r["count"] for r in rows}), flush=True)
        if done:
            break
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
