"""Serve the MLflow UI on the configured tracking store: runs, their metrics and plots, the registered models."""
from __future__ import annotations

import logging
import os
import sys

from hitcast.cli import config_from_args, job_parser

log = logging.getLogger("hitcast.mlflow_ui")


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(
        "mlflow_ui.py",
        "Serve the MLflow UI for hitcast's tracking store on mlflow.ui_host:mlflow.ui_port (127.0.0.1:5000):\n"
        "every training run (parameters, per-epoch curves, input table versions, the evaluation's test figures\n"
        "and report), and the registered model mlflow.registered_model with its versions and the alias\n"
        "'champion'. With mlflow.tracking_uri set (a team's server) there is nothing to serve: open that URL.\n"
        "Runs in the foreground until Ctrl-C.")
    parser.add_argument("--port", type=int, default=None, help="port (default: mlflow.ui_port)")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    from hitcast.lifecycle.tracking import artifact_root, tracking_uri

    if cfg.mlflow.tracking_uri:
        log.info("mlflow.tracking_uri is %s: open its UI there", cfg.mlflow.tracking_uri)
        return 0
    port = args.port or cfg.mlflow.ui_port
    command = [os.path.join(os.path.dirname(sys.executable), "mlflow"), "server",
               "--backend-store-uri", tracking_uri(cfg), "--default-artifact-root", artifact_root(cfg),
               "--host", cfg.mlflow.ui_host, "--port", str(port), "--workers", "1"]
    log.info("MLflow UI on http://%s:%d (store %s); Ctrl-C stops it", cfg.mlflow.ui_host, port, tracking_uri(cfg))
    os.execv(command[0], command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
