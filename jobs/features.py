"""Point-in-time features and labels for every configured cutoff into Delta training_examples."""
from __future__ import annotations

import sys
from dataclasses import replace

from hitcast.cli import job_parser, run_stage


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(
        "features.py",
        "Build training_examples: one row per (track_id, cutoff) over features.cutoffs, with features from "
        "engagement strictly before each cutoff, catalog metadata and artist history, labels from "
        "[cutoff, cutoff + horizon_days) and a train/validation/test split. Overwrites the table.")
    parser.add_argument("--cutoffs", nargs="+", metavar="DATE", help="override features.cutoffs (ISO dates)")
    args = parser.parse_args(argv)
    from hitcast.features.stage import run_features

    def configure(cfg):
        if not args.cutoffs:
            return cfg
        return replace(cfg, features=replace(cfg.features, cutoffs=list(args.cutoffs)))

    return run_stage(args, "hitcast-features", run_features, configure=configure)


if __name__ == "__main__":
    sys.exit(main())
