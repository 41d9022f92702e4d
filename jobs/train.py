"""Train the fused CNN on `training_examples` x `spectrograms` across Spark barrier tasks; register a version."""
from __future__ import annotations

import logging

from hitcast.cli import config_from_args, job_parser, step
from hitcast.model.training import table_inputs, train_model
from hitcast.spark import build_session

log = logging.getLogger("hitcast.jobs.train")


def main() -> None:
    parser = job_parser(
        "train",
        "Distributed training of the hit model. training_examples (train + validation splits) joined with\n"
        "spectrograms is materialised for Petastorm; train.workers Spark barrier tasks each run a\n"
        "MultiWorkerMirroredStrategy worker on its own shard with a custom loop. The chief saves the model\n"
        "under paths.models/<model_version>/ (model.keras, stats.json, config.yaml, metrics.json,\n"
        "inputs.json) and a row is MERGEd into the Delta table `models`. The version is a hash of the inputs'\n"
        "content and the train settings: an existing version is skipped unless --force.")
    parser.add_argument("--variant", choices=["fused", "tabular", "audio"], default=None,
                        help="model variant (default: train.variant)")
    parser.add_argument("--force", action="store_true", help="retrain even if the model version exists")
    args = parser.parse_args()
    cfg = config_from_args(args)
    spark = build_session(cfg, "hitcast-train")
    with step("reading inputs and fingerprinting them"):
        examples, spectrograms, inputs = table_inputs(spark, cfg)
    with step("training"):
        out = train_model(spark, cfg, examples, spectrograms, inputs, args.variant, args.force)
    val = out.metrics.get("validation", {})
    log.info("summary: model version %s (%s) %s at %s%s", out.version, out.variant,
             "already existed" if out.skipped else f"trained on {cfg.train.workers} workers", out.path,
             "" if out.skipped else f"; validation AUC {val.get('val_auc', float('nan')):.3f}, "
                                    f"F1 {val.get('val_f1', float('nan')):.3f}")
    spark.stop()


if __name__ == "__main__":
    main()
