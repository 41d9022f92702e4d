"""Train the fused CNN on `training_examples` x `spectrograms` across Spark barrier tasks; register a version."""
from __future__ import annotations

import sys

from hitcast.cli import job_parser, run_stage


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(
        "train.py",
        "Distributed training of the hit model. training_examples (train + validation splits) joined with\n"
        "spectrograms is materialised for Petastorm; train.workers Spark barrier tasks each run a\n"
        "MultiWorkerMirroredStrategy worker on its own shard with a custom loop. The chief saves the model\n"
        "under paths.models/<model_version>/ (model.keras, stats.json, config.yaml, metrics.json,\n"
        "inputs.json); the run is logged to MLflow (parameters, per-epoch metrics, input table versions, the\n"
        "model as a pyfunc), the model registered (mlflow.registered_model, tag variant), and a row MERGEd\n"
        "into the Delta table `models`. The version is a hash of the inputs'\n"
        "content and the train settings: an existing version is skipped unless --force.\n"
        "The chief checkpoints every epoch under <model_version>/checkpoints/. If a training worker is lost,\n"
        "the job exits with status 2 and says which epoch the last checkpoint holds; re-running the same\n"
        "command resumes from it (checkpoints are deleted once the version is registered).")
    parser.add_argument("--variant", choices=["fused", "tabular", "audio"], default=None,
                        help="model variant (default: train.variant)")
    parser.add_argument("--force", action="store_true", help="retrain even if the model version exists")
    args = parser.parse_args(argv)
    from hitcast.lifecycle.training import run_training

    return run_stage(args, "hitcast-train",
                     lambda spark, cfg: run_training(spark, cfg, variant=args.variant, force=args.force))


if __name__ == "__main__":
    sys.exit(main())
