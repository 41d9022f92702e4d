"""Load a model version for inference: the bundle catalog scoring and evaluation call.

::

    version, path = resolve_model(spark, cfg, "champion")   # hitcast.lifecycle.registry
    bundle = load_bundle(path)                   # cheap to cache per process
    scores = bundle.predict_pandas(pdf)          # hit_probability, popularity_score
    hits = scores["hit_probability"] >= bundle.threshold    # the threshold chosen on validation

``predict_pandas`` encodes rows with the same NumPy code as training (:func:`encode_tabular`,
:func:`mel_arrays`) and calls the model through a ``tf.function`` around ``model(x, training=False)``:
``model.predict`` costs ~50 ms a call, which dominates small Arrow batches.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hitcast.model.dataset import encode_inputs, mel_input, mel_matrix
from hitcast.model.spec import ModelSpec, load_spec
from hitcast.model.store import MODEL_FILE
from hitcast.model.tabular import TabularStats

log = logging.getLogger(__name__)

#: Rows per model call inside :meth:`ModelBundle.predict_pandas`.
CHUNK = 512


#: The decision threshold of a model version that saved none (``metrics.json`` without ``threshold``).
DEFAULT_THRESHOLD = 0.5


@dataclass
class ModelBundle:
    """A loaded model version.

    Attributes
    ----------
    version, variant : str
    feature_columns : list of str
        Numeric input columns (``genre`` is read as well).
    stats : TabularStats
    threshold : float
        A track is a predicted hit when ``hit_probability >= threshold``: the F1-maximising threshold on
        the validation split of the kept epoch (``metrics.json``), :data:`DEFAULT_THRESHOLD` without one.
    spec : ModelSpec
        What the model reads (``spec.json``; :mod:`hitcast.model.spec`).
    """

    version: str
    variant: str
    feature_columns: list[str]
    stats: TabularStats
    model: Any = field(repr=False)
    spec: ModelSpec = field(repr=False, kw_only=True)
    threshold: float = DEFAULT_THRESHOLD
    _call: Any = field(default=None, repr=False)

    @property
    def has_popularity_head(self) -> bool:
        return "popularity" in self.model.output if isinstance(self.model.output, dict) else False

    def inputs(self, pdf: pd.DataFrame) -> dict[str, np.ndarray]:
        """Model inputs for ``pdf`` (see :mod:`hitcast.model.architecture` for names and shapes), one entry
        per model input of :attr:`spec`."""
        x = encode_inputs(pdf, self.spec, self.stats)
        if "mel" in x:
            x["mel"] = mel_input(mel_matrix(x["mel"]), self.stats.n_mels, self.stats.n_frames).numpy()
            x["has_audio"] = x["has_audio"].reshape(-1, 1)
        return {k: x[k] for k in self.spec.input_names()}

    def predict_pandas(self, pdf: pd.DataFrame) -> pd.DataFrame:
        """Score rows.

        Parameters
        ----------
        pdf : pandas.DataFrame
            The feature columns and ``genre`` (missing values allowed), for audio variants ``mel``
            (uint8 bytes or None), ``n_mels``, ``n_frames``, ``status``, and each ``numeric`` group's columns.

        Returns
        -------
        pandas.DataFrame
            Same index and length as ``pdf``: ``hit_probability`` (float64 in [0, 1]) and
            ``popularity_score`` (float64 in [0, 100], NaN without a popularity head).
        """
        hit = np.zeros(len(pdf), dtype=np.float64)
        pop = np.full(len(pdf), np.nan, dtype=np.float64)
        for start in range(0, len(pdf), CHUNK):
            part = pdf.iloc[start:start + CHUNK]
            out = self.call(self.inputs(part))
            hit[start:start + len(part)] = out["hit"].reshape(-1)
            if "popularity" in out:
                pop[start:start + len(part)] = 100.0 * out["popularity"].reshape(-1)
        return pd.DataFrame({"hit_probability": np.clip(hit, 0.0, 1.0), "popularity_score": pop},
                            index=pdf.index)

    def call(self, x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The model on encoded inputs (:meth:`inputs`), through one ``tf.function``: ``hit`` (n, 1) and, with
        that head, ``popularity`` (n, 1) in [0, 1]."""
        import tensorflow as tf

        if self._call is None:
            model = self.model
            self._call = tf.function(lambda v: model(v, training=False), reduce_retracing=True)
        out = self._call({k: tf.constant(v) for k, v in x.items()})
        return {k: out[k].numpy() for k in ("hit", "popularity") if k in out}


def saved_threshold(path: str | os.PathLike[str]) -> float:
    """``threshold`` from ``path/metrics.json`` (:data:`DEFAULT_THRESHOLD` when the file or key is absent)."""
    metrics = Path(path) / "metrics.json"
    value = json.loads(metrics.read_text()).get("threshold") if metrics.is_file() else None
    return float(value) if value is not None else DEFAULT_THRESHOLD


def load_bundle(path: str | os.PathLike[str]) -> ModelBundle:
    """Load the model version directory ``path`` (``model.keras``, ``stats.json``, ``spec.json``, the threshold
    in ``metrics.json``)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    path = Path(path)
    stats = TabularStats.from_json((path / "stats.json").read_text())
    model = keras.saving.load_model(path / MODEL_FILE, compile=False)
    spec = load_spec(path)
    version = stats.extra.get("version", path.name)
    threshold = saved_threshold(path)
    log.info("loaded model %s (%s: %s, threshold %.3f) from %s", version, spec.variant, ", ".join(spec.names),
             threshold, path)
    return ModelBundle(version, spec.variant, list(stats.features), stats, model, threshold, spec=spec)
