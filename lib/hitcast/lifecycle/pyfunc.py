"""The MLflow ``pyfunc`` flavour of a hitcast model version: the version's bundle, scored as scoring does.

``mlflow.pyfunc.load_model("models:/hitcast@champion").predict(pdf)`` returns what
:meth:`hitcast.model.bundle.ModelBundle.predict_pandas` returns for ``pdf``: ``hit_probability`` and
``popularity_score`` per row. ``pdf`` holds the model's feature columns and ``genre`` and, for audio
variants, ``mel``, ``n_mels``, ``n_frames`` and ``status`` (the columns of :mod:`hitcast.scoring.inputs`).
"""
from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd


class BundleModel(mlflow.pyfunc.PythonModel):
    """A hitcast bundle (the artifact ``bundle``: the version directory) behind MLflow's pyfunc interface."""

    def load_context(self, context: Any) -> None:
        from hitcast.model.bundle import load_bundle

        self.bundle = load_bundle(context.artifacts["bundle"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Score ``model_input`` (n rows) -> DataFrame (n rows): ``hit_probability``, ``popularity_score``."""
        return self.bundle.predict_pandas(model_input)
