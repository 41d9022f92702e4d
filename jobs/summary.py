"""Print where the predictions are, the top tracks, and the model's held-out F1 and ROC-AUC."""
from __future__ import annotations

import sys

from hitcast.cli import job_parser, run_stage


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("summary.py", "Summarise a pipeline run: the predictions table's location, its top\n"
                                      "tracks, and the scoring model's F1 / ROC-AUC on the held-out (test) split.")
    parser.add_argument("--top", type=int, default=10, help="how many tracks to list (default 10)")
    args = parser.parse_args(argv)
    from hitcast.scoring.summary import pipeline_summary

    return run_stage(args, "hitcast-summary", lambda spark, cfg: pipeline_summary(spark, cfg, top_n=args.top))


if __name__ == "__main__":
    sys.exit(main())
