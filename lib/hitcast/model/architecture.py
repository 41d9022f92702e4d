"""The Keras 3 fused CNN: a small CNN over the log-mel spectrogram and an MLP over tabular features.

The CNN convolves over time with the mel bands as channels (a "1-D" music CNN): on CPU cores it trains
several times faster than 2-D 3x3 blocks of the same widths, and it sees timbre (across bands) and rhythm
(across frames).

Inputs (a dict; a variant uses only the ones it needs, see :func:`input_names`):

- ``tabular``   float32, shape (batch, W): :func:`hitcast.model.tabular.encode_tabular` output;
- ``mel``       float32, shape (batch, n_mels, n_frames): ``uint8 / 255`` log-mel, zeros when absent;
- ``has_audio`` float32, shape (batch, 1): 1 when ``mel`` is a real spectrogram.

Outputs (a dict): ``hit`` (batch, 1) sigmoid hit probability and, with the popularity head,
``popularity`` (batch, 1) in [0, 1] (popularity / 100). With ``members`` K > 1 (``train.ensemble``) the
model holds K independently initialised copies of the network: ``hit`` and ``popularity`` are their means,
and ``member_hit`` / ``member_popularity`` (batch, K) are what training fits, each member on its own loss.

Variants share this code: ``fused`` uses both branches, ``tabular`` switches the CNN off, ``audio``
switches the MLP off. The audio branch's embedding is multiplied by ``has_audio``, so a track without
audio contributes exactly nothing from the CNN (and ``has_audio`` itself is an input of the head).
Normalisation is LayerNormalization: it has no moving statistics, so every worker of a
MultiWorkerMirroredStrategy run holds the same weights after each step.
"""
from __future__ import annotations

from typing import Sequence

VARIANTS = ("fused", "tabular", "audio")


def input_names(variant: str) -> list[str]:
    """The model inputs ``variant`` uses."""
    if variant not in VARIANTS:
        from hitcast.errors import ConfigError

        raise ConfigError(f"train.variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    return {"fused": ["tabular", "mel", "has_audio"], "tabular": ["tabular"],
            "audio": ["mel", "has_audio"]}[variant]


def _member(inputs: dict, names: list[str], popularity_head: bool, conv_filters: Sequence[int], dense_units: int,
            dropout: float, kernel_size: int, tag: str = "") -> dict:
    """One model's layers on ``inputs``; layer names end in ``tag`` (empty for a single model)."""
    from keras import layers

    parts = []
    if "tabular" in names:
        t = layers.Dense(dense_units, activation="relu", name=f"mlp_1{tag}")(inputs["tabular"])
        t = layers.Dropout(dropout, name=f"mlp_drop{tag}")(t)
        t = layers.Dense(dense_units // 2, activation="relu", name=f"mlp_2{tag}")(t)
        parts.append(t)
    if "mel" in names:
        a = layers.Permute((2, 1), name=f"time_major{tag}")(inputs["mel"])      # (batch, n_frames, n_mels)
        for i, filters in enumerate(conv_filters):
            a = layers.Conv1D(filters, kernel_size, padding="same", use_bias=False, name=f"conv_{i}{tag}")(a)
            a = layers.LayerNormalization(name=f"norm_{i}{tag}")(a)
            a = layers.ReLU(name=f"relu_{i}{tag}")(a)
            a = layers.MaxPooling1D(2, name=f"pool_{i}{tag}")(a)
        a = layers.Concatenate(name=f"global_pool{tag}")([layers.GlobalAveragePooling1D(name=f"time_mean{tag}")(a),
                                                          layers.GlobalMaxPooling1D(name=f"time_max{tag}")(a)])
        a = layers.Dense(dense_units // 2, activation="relu", name=f"audio_dense{tag}")(a)
        a = layers.Multiply(name=f"audio_gate{tag}")([a, inputs["has_audio"]])
        parts += [a, inputs["has_audio"]]
    x = parts[0] if len(parts) == 1 else layers.Concatenate(name=f"fuse{tag}")(parts)
    x = layers.Dense(dense_units // 2, activation="relu", name=f"head{tag}")(x)
    x = layers.Dropout(dropout, name=f"head_drop{tag}")(x)
    out = {"hit": layers.Dense(1, activation="sigmoid", name=f"hit{tag}")(x)}
    if popularity_head:
        out["popularity"] = layers.Dense(1, activation="sigmoid", name=f"popularity{tag}")(x)
    return out


def build_model(*, tabular_width: int, n_mels: int, n_frames: int, variant: str = "fused",
                popularity_head: bool = True, conv_filters: Sequence[int] = (16, 32, 64),
                dense_units: int = 64, dropout: float = 0.2, kernel_size: int = 5, members: int = 1):
    """Build (uncompiled) the model.

    Parameters
    ----------
    tabular_width : int
        ``W``, the length of the encoded tabular vector.
    n_mels, n_frames : int
        Spectrogram shape.
    variant : {"fused", "tabular", "audio"}
    popularity_head : bool
        Add the ``popularity`` regression output.
    conv_filters : sequence of int
        One conv block per entry: a convolution over time (``kernel_size`` frames, the mel bands as
        input channels), LayerNorm, ReLU and max-pooling by 2 in time. Global mean and max pooling
        over time close the branch.
    members : int
        ``K`` independently initialised copies of the network in one model (a deep ensemble). ``hit``
        and ``popularity`` are then the members' mean, and the extra outputs ``member_hit`` and
        ``member_popularity``, shape (batch, K), are what training fits: each member on its own loss, so
        they stay independent. Scoring reads ``hit`` and ``popularity`` either way.

    Returns
    -------
    keras.Model
    """
    import keras
    from keras import layers

    if members < 1:
        from hitcast.errors import ConfigError

        raise ConfigError(f"train.ensemble must be at least 1, got {members}")
    names = input_names(variant)
    inputs = {}
    if "tabular" in names:
        inputs["tabular"] = keras.Input((tabular_width,), name="tabular")
    if "mel" in names:
        inputs["mel"] = keras.Input((n_mels, n_frames), name="mel")
        inputs["has_audio"] = keras.Input((1,), name="has_audio")
    args = (inputs, names, popularity_head, conv_filters, dense_units, dropout, kernel_size)
    if members == 1:
        return keras.Model(inputs=inputs, outputs=_member(*args), name=f"hitcast_{variant}")
    outs = [_member(*args, tag=f"_m{k}") for k in range(members)]
    outputs = {}
    for head in outs[0]:
        stacked = layers.Concatenate(name=f"member_{head}")([o[head] for o in outs])     # (batch, K)
        outputs[f"member_{head}"] = stacked
        outputs[head] = layers.Average(name=head)([o[head] for o in outs])
    return keras.Model(inputs=inputs, outputs=outputs, name=f"hitcast_{variant}_x{members}")


def weights_checksum(model) -> str:
    """sha256 over every weight array of ``model`` (equal checksums = identical weights)."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()
