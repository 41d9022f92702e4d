"""Print where the predictions are, the top tracks, and the model's held-out F1 and ROC-AUC."""
from __future__ import annotations

import logging

from hitcast.cli import config_from_args, job_parser
from hitcast.spark import build_session
from hitcast.summary import format_summary, pipeline_summary

log = logging.getLogger("hitcast.jobs.summary")


def main() -> None:
    parser = job_parser("summary", "Summarise a pipeline run: the predictions table's location, its top tracks,\n"
                                   "and the scoring model's F1 / ROC-AUC on the held-out (test) split.")
    parser.add_argument("--top", type=int, default=10, help="how many tracks to list (default 10)")
    args = parser.parse_args()
    cfg = config_from_args(args)
    spark = build_session(cfg, "hitcast-summary")
    log.info("pipeline summary\n%s", format_summary(pipeline_summary(spark, cfg, args.top)))
    spark.stop()


if __name__ == "__main__":
    main()
