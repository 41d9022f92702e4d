"""The train stage: one model version trained (:func:`hitcast.model.training.train_model`) and registered
(MLflow run and registered version, ``models`` row) in the same step."""
from __future__ import annotations

import logging
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from hitcast.config import Config
from hitcast.lifecycle import registry
from hitcast.model.dataset import group_sources
from hitcast.model.spec import DEFAULT_SPEC
from hitcast.model.training import TrainOutcome, table_inputs, train_model, version_config

log = logging.getLogger(__name__)


def register_outcome(spark: SparkSession, cfg: Config, out: TrainOutcome, *, inputs: dict[str, Any],
                     role: str, reason: str) -> None:
    """Register a trained (or already present) version with ``role`` unless it has one (see
    :func:`hitcast.lifecycle.registry.register`)."""
    registry.register(spark, cfg, out.version, variant=out.variant, workers=out.workers, metrics=out.metrics,
                      inputs=out.inputs or inputs, config=version_config(cfg, out.variant, out.spec), role=role,
                      reason=reason)


def train_and_register(spark: SparkSession, cfg: Config, examples: DataFrame, *, spectrograms: DataFrame | None,
                       inputs: dict[str, Any], variant: str | None = None, force: bool = False,
                       role: str = "candidate", **train_options: Any) -> TrainOutcome:
    """:func:`hitcast.model.training.train_model`, then :func:`register_outcome` (``role`` for a new
    version; ``train_options`` go to ``train_model``)."""
    out = train_model(spark, cfg, examples, spectrograms=spectrograms, inputs=inputs, variant=variant, force=force,
                      **train_options)
    register_outcome(spark, cfg, out, inputs=inputs, role=role,
                     reason="trained" if role == "candidate" else f"trained as {role}")
    return out


def run_training(spark: SparkSession, cfg: Config, *, variant: str | None = None,
                 force: bool = False) -> TrainOutcome:
    """The training stage: ``training_examples`` x ``spectrograms`` (x the source of every other input group of
    :data:`hitcast.model.spec.DEFAULT_SPEC`) from the warehouse, one registered model version (a ``candidate``
    until ``jobs/promote.py``)."""
    examples, spectrograms, inputs = table_inputs(spark, cfg)
    return train_and_register(spark, cfg, examples, spectrograms=spectrograms, inputs=inputs, variant=variant,
                              force=force, spec=DEFAULT_SPEC, sources=group_sources(spark, cfg, DEFAULT_SPEC))
