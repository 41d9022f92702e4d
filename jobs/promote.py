"""Make a candidate model version the champion that catalog scoring uses (Delta table `models`, column `role`)."""
from __future__ import annotations

import sys

from hitcast.cli import job_parser, run_stage


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(
        "promote.py",
        "Promote a model version to champion: the model jobs/score.py uses by default.\n"
        "The MLflow alias `champion` (mlflow.registered_model) moves to the promoted version, mirrored in the\n"
        "Delta table `models` (column `role`); a refusal or a --force reason is a tag on the version. Roles: training registers a new version as `candidate`; the champion is\n"
        "the one version scoring uses; the champion before it becomes `archived`; the evaluation's ablations\n"
        "are `ablation`. The default version is the newest candidate of train.variant (nothing to do when\n"
        "the champion is newer than every candidate, as on a re-run of make demo).\n"
        "The candidate and the current champion score the same rows, the labelled test split of\n"
        "training_examples joined with spectrograms, each at its own threshold saved at training (the\n"
        "F1-maximising one on validation). The promotion is refused (exit status 2, both models' ROC-AUC and\n"
        "F1 in the message) when the candidate's ROC-AUC is below the champion's by more than\n"
        "promote.margin_roc_auc, or its F1 by more than promote.margin_f1. --force promotes it anyway and\n"
        "needs --reason. With no champion yet, the candidate becomes the first champion. Every promotion is\n"
        "recorded in models.role_reason and appended to the Delta table `model_promotions` (who, when, why,\n"
        "both models' figures).")
    parser.add_argument("--model-version", default=None,
                        help="the version to promote (default: the newest candidate of train.variant); an "
                             "archived version rolls back to it")
    parser.add_argument("--force", action="store_true",
                        help="promote even if the candidate is worse than the champion beyond the margins")
    parser.add_argument("--reason", default="", metavar="TEXT",
                        help="why (required with --force; recorded with the promotion)")
    args = parser.parse_args(argv)
    if args.force and not args.reason.strip():
        parser.error("--force needs --reason TEXT (the reason is recorded with the promotion)")
    from hitcast.lifecycle.promote import run_promote

    return run_stage(args, "hitcast-promote",
                     lambda spark, cfg: run_promote(spark, cfg, version=args.model_version, force=args.force,
                                                    reason=args.reason))


if __name__ == "__main__":
    sys.exit(main())
