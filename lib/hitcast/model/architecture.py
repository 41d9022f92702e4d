"""The Keras 3 fused network, built from a model spec (:mod:`hitcast.model.spec`): a small CNN over the
log-mel spectrogram, an MLP over tabular features and one dense layer per ``numeric`` input group.

The CNN convolves over time with the mel bands as channels (a "1-D" music CNN): on CPU cores it trains
several times faster than 2-D 3x3 blocks of the same widths, and it sees timbre (across bands) and rhythm
(across frames).

Inputs (a dict, one entry per model input of the spec's groups, see
:meth:`hitcast.model.spec.ModelSpec.input_names`):

- ``tabular``   float32, shape (batch, W): :func:`hitcast.model.tabular.encode_tabular` output;
- ``mel``       float32, shape (batch, n_mels, n_frames): ``uint8 / 255`` log-mel, zeros when absent;
- ``has_audio`` float32, shape (batch, 1): 1 when ``mel`` is a real spectrogram;
- ``<group>``   float32, shape (batch, 2 * C) per ``numeric`` group: :func:`hitcast.model.tabular.encode_numeric`.

The layers of each group's branch are named by :func:`branch_layers` (and rebuilt by :func:`head_branch` for
the encoder/head split of :mod:`hitcast.model.explain`): one definition for the network and its split.

Outputs (a dict): ``hit`` (batch, 1) sigmoid hit probability and, with the popularity head,
``popularity`` (batch, 1) in [0, 1] (popularity / 100). With ``members`` K > 1 (``train.ensemble``) the
model holds K independently initialised copies of the network: ``hit`` and ``popularity`` are their means,
and ``member_hit`` / ``member_popularity`` (batch, K) are what training fits, each member on its own loss.

Variants share this code: ``fused`` uses every group, ``tabular`` keeps the MLP alone, ``audio`` the CNN
alone (:meth:`hitcast.model.spec.ModelSpec.for_variant`). The audio branch's embedding is multiplied by ``has_audio``, so a track without
audio contributes exactly nothing from the CNN (and ``has_audio`` itself is an input of the head).
Normalisation is LayerNormalization: it has no moving statistics, so every worker of a
MultiWorkerMirroredStrategy run holds the same weights after each step.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from hitcast.model.spec import DEFAULT_SPEC, InputGroup, ModelSpec

VARIANTS = DEFAULT_SPEC.variants


def input_names(variant: str) -> list[str]:
    """The model inputs ``variant`` of :data:`hitcast.model.spec.DEFAULT_SPEC` uses."""
    return DEFAULT_SPEC.for_variant(variant).input_names()


def branch_layers(group: InputGroup, conv_blocks: int, tag: str = "") -> list[str]:
    """Names of the layers of ``group``'s branch in a member tagged ``tag`` (what the split looks up)."""
    if group.kind == "tabular":
        return [f"mlp_1{tag}", f"mlp_drop{tag}", f"mlp_2{tag}"]
    if group.kind == "audio":
        conv = [f"{p}_{i}{tag}" for i in range(conv_blocks) for p in ("conv", "norm", "relu", "pool")]
        return [f"time_major{tag}", *conv, f"time_mean{tag}", f"time_max{tag}", f"global_pool{tag}",
                f"audio_dense{tag}", f"audio_gate{tag}"]
    return [f"{group.name}_dense{tag}"]


#: The layer whose output is a group's embedding computed by the encoder of the split (groups not named
#: here run in the head).
ENCODER_OUTPUT = {"audio": "audio_dense"}


def _branch(group: InputGroup, inputs: dict, p: dict, tag: str) -> list:
    """Build ``group``'s branch on ``inputs``: the tensors it adds to the fusion (in order)."""
    from keras import layers

    if group.kind == "tabular":
        t = layers.Dense(p["dense_units"], activation="relu", name=f"mlp_1{tag}")(inputs["tabular"])
        t = layers.Dropout(p["dropout"], name=f"mlp_drop{tag}")(t)
        return [layers.Dense(p["dense_units"] // 2, activation="relu", name=f"mlp_2{tag}")(t)]
    if group.kind == "audio":
        a = layers.Permute((2, 1), name=f"time_major{tag}")(inputs["mel"])      # (batch, n_frames, n_mels)
        for i, filters in enumerate(p["conv_filters"]):
            a = layers.Conv1D(filters, p["kernel_size"], padding="same", use_bias=False, name=f"conv_{i}{tag}")(a)
            a = layers.LayerNormalization(name=f"norm_{i}{tag}")(a)
            a = layers.ReLU(name=f"relu_{i}{tag}")(a)
            a = layers.MaxPooling1D(2, name=f"pool_{i}{tag}")(a)
        a = layers.Concatenate(name=f"global_pool{tag}")([layers.GlobalAveragePooling1D(name=f"time_mean{tag}")(a),
                                                          layers.GlobalMaxPooling1D(name=f"time_max{tag}")(a)])
        a = layers.Dense(p["dense_units"] // 2, activation="relu", name=f"audio_dense{tag}")(a)
        return [layers.Multiply(name=f"audio_gate{tag}")([a, inputs["has_audio"]]), inputs["has_audio"]]
    return [layers.Dense(p["dense_units"] // 2, activation="relu", name=f"{group.name}_dense{tag}")(inputs[group.name])]


def head_branch(group: InputGroup, layer: Callable[[str], Any], ins: dict, tag: str, k: int) -> list:
    """``group``'s part of the head of a split model: the trained layers (``layer(name)``) applied to the
    head's inputs ``ins`` (``emb_<k>`` is member ``k``'s encoder output for a group with an encoder)."""
    if group.kind == "tabular":
        return [layer(f"mlp_2{tag}")(layer(f"mlp_drop{tag}")(layer(f"mlp_1{tag}")(ins["tabular"])))]
    if group.kind == "audio":
        return [layer(f"audio_gate{tag}")([ins[f"emb_{k}"], ins["has_audio"]]), ins["has_audio"]]
    return [layer(f"{group.name}_dense{tag}")(ins[group.name])]


def fuse_and_heads(parts: list, p: dict, tag: str, layer: Callable[[str], Any] | None = None) -> dict:
    """Fusion, the shared head layer and the output heads over the branches' ``parts``; with ``layer``,
    the trained layers of that name are reused (the split's head) instead of new ones."""
    from keras import layers

    def make(name: str, new: Callable[[], Any]) -> Any:
        return layer(name) if layer is not None else new()

    x = parts[0] if len(parts) == 1 else make(f"fuse{tag}", lambda: layers.Concatenate(name=f"fuse{tag}"))(parts)
    x = make(f"head{tag}", lambda: layers.Dense(p["dense_units"] // 2, activation="relu", name=f"head{tag}"))(x)
    x = make(f"head_drop{tag}", lambda: layers.Dropout(p["dropout"], name=f"head_drop{tag}"))(x)
    heads = ["hit", "popularity"] if p["popularity_head"] else ["hit"]
    return {h: make(f"{h}{tag}", lambda h=h: layers.Dense(1, activation="sigmoid", name=f"{h}{tag}"))(x)
            for h in heads}


def _member(inputs: dict, spec: ModelSpec, p: dict, tag: str = "") -> dict:
    """One model's layers on ``inputs``; layer names end in ``tag`` (empty for a single model)."""
    parts = [t for g in spec.groups for t in _branch(g, inputs, p, tag)]
    return fuse_and_heads(parts, p, tag)


def model_inputs(spec: ModelSpec, *, tabular_width: int, n_mels: int, n_frames: int) -> dict:
    """``keras.Input`` per model input of ``spec`` (see :mod:`hitcast.model.spec` for names and shapes)."""
    import keras

    shapes = {"tabular": (tabular_width,), "mel": (n_mels, n_frames), "has_audio": (1,)}
    shapes.update({g.name: (g.width,) for g in spec.of_kind("numeric")})
    return {name: keras.Input(shapes[name], name=name) for name in spec.input_names()}


def build_model(*, tabular_width: int, n_mels: int, n_frames: int, variant: str = "fused",
                popularity_head: bool = True, conv_filters: Sequence[int] = (16, 32, 64),
                dense_units: int = 64, dropout: float = 0.2, kernel_size: int = 5, members: int = 1,
                spec: ModelSpec | Mapping[str, Any] | None = None):
    """Build (uncompiled) the model: one branch per input group of the spec, fused, then the heads.

    Parameters
    ----------
    tabular_width : int
        ``W``, the length of the encoded tabular vector.
    n_mels, n_frames : int
        Spectrogram shape.
    variant : str
        ``fused`` (every group of ``spec``) or the name of one group (``tabular``, ``audio``, ...).
    spec : ModelSpec or its ``to_dict()``, optional
        The input groups (default :data:`hitcast.model.spec.DEFAULT_SPEC`). A ``numeric`` group adds an
        input ``<name>`` of shape (batch, 2 * len(columns)) and a dense layer ``<name>_dense``.
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
    if isinstance(spec, Mapping):
        spec = ModelSpec.from_dict(spec)
    spec = (spec or DEFAULT_SPEC).for_variant(variant)
    inputs = model_inputs(spec, tabular_width=tabular_width, n_mels=n_mels, n_frames=n_frames)
    p = {"popularity_head": popularity_head, "conv_filters": list(conv_filters), "dense_units": dense_units,
         "dropout": dropout, "kernel_size": kernel_size}
    args = (inputs, spec, p)
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
