"""Why a track got its score: the signed effect of each input group on the hit probability.

Method (occlusion by input group). The inputs a person reads about are groups of model inputs: "listening
in the last 28 days" is the seven ``*_28d`` engagement features, "audio" is the spectrogram, "genre" the
genre one-hot. A group's contribution to a track's score is ::

    contribution(g) = p(track) - p(track with group g unknown)

where "unknown" is the state the model already knows from training: a feature's missing encoding (value
block 0, missing indicator 1, as for a cold-start track's engagement), the unknown-genre bucket, or
``has_audio = 0`` (which gates the audio branch off), or for a ``numeric`` input group of the model spec
(:mod:`hitcast.model.spec`) every one of its columns missing. So neutralising a track's top input moves its score by
exactly its stated contribution; groups interact, so contributions need not add up to ``p``.

Cost. The CNN is most of a forward pass. The model is split once into its audio encoder (mel -> each
member's ``audio_dense`` embedding) and its head (every other input, embedding, has_audio -> outputs), sharing
the trained layers, from the spec and the same branch definitions the network is built from (checked:
:func:`check_spec`); a batch then costs one encoder pass and one head pass over ``n * (groups + 1)`` rows.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from hitcast.model.architecture import ENCODER_OUTPUT, branch_layers, fuse_and_heads, head_branch
from hitcast.model.spec import ModelSpec, SpecError
from hitcast.model.tabular import TabularStats, neutral_numeric

#: Output of :func:`top_reasons` per track, as stored in ``predictions.reasons``.
REASONS_DDL = "array<struct<input:string,contribution:double>>"
AUDIO = "audio"
GENRE = "genre"
_WINDOW = re.compile(r"^(plays|listeners|skip_rate|save_rate|playlist_adds|shares|completion)_(\d+)d$")


def group_of(feature: str) -> str:
    """The human-readable input group of a feature column."""
    m = _WINDOW.match(feature)
    if m:
        return f"listening in the last {m.group(2)} days"
    if feature.startswith("artist_"):
        return "artist's earlier tracks"
    if feature in ("plays_total", "days_since_first_event", "trend_7d"):
        return "listening to date"
    if feature == "days_since_release":
        return "release age"
    return "track metadata"


def input_groups(stats: TabularStats) -> dict[str, list[int]]:
    """Group label -> indices into ``stats.features`` (in first-seen feature order)."""
    groups: dict[str, list[int]] = {}
    for j, feature in enumerate(stats.features):
        groups.setdefault(group_of(feature), []).append(j)
    return groups


def neutralise(tab: np.ndarray, stats: TabularStats, *, features: Sequence[int] = (),
               genre: bool = False) -> np.ndarray:
    """A copy of encoded rows with ``features`` (indices) set to "missing" and, with ``genre``, the genre
    set to the unknown bucket; the encoding of :func:`hitcast.model.tabular.encode_tabular`.

    Parameters
    ----------
    tab : np.ndarray, shape (n, stats.width), float32
    """
    out = tab.copy()
    f, b = len(stats.features), max(stats.bins, 1)
    for j in features:
        out[:, j * b:(j + 1) * b] = 0.0
        out[:, f * b + j] = 1.0
    if genre:
        out[:, f * (b + 1):] = 0.0
        out[:, -1] = 1.0
    return out


def _members(model) -> list[str]:
    """Layer-name suffixes of the model's ensemble members (``[""]`` for a single network)."""
    names = {layer.name for layer in model.layers}
    if "hit" in names and "hit_m0" not in names:
        return [""]
    return sorted({n[len("hit"):] for n in names if re.fullmatch(r"hit_m\d+", n)}, key=lambda t: int(t[2:]))


@dataclass
class SplitModel:
    """A trained model as ``encoder`` (mel -> per-member embeddings; None without audio) and ``head``."""

    encoder: Any
    head: Any
    embedding_width: int
    members: int
    _calls: dict = field(default_factory=dict, repr=False)

    def encode(self, mel: np.ndarray) -> list[np.ndarray]:
        """Per-member audio embeddings, each of shape (n, embedding_width)."""
        out = self._call("encoder", mel)
        return [np.asarray(e) for e in (out if isinstance(out, (list, tuple)) else [out])]

    def run_head(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The head's outputs (``hit``, maybe ``popularity``), each of shape (n, 1)."""
        return {k: np.asarray(v) for k, v in self._call("head", feed).items()}

    def _call(self, name: str, x: Any) -> Any:
        if name not in self._calls:
            import tensorflow as tf

            model = getattr(self, name)
            self._calls[name] = tf.function(lambda v: model(v, training=False), reduce_retracing=True)
        return self._calls[name](x)


def check_spec(model, spec: ModelSpec, tags: Sequence[str]) -> None:
    """Check that ``model`` is the network ``spec`` builds: the same inputs (and numeric widths), and every
    layer of every group's branch present in every member.

    Raises
    ------
    SpecError
        Naming the group whose input or layer the network lacks, or the model input no group declares.
    """
    have = dict(model.input) if isinstance(model.input, dict) else {}
    layers = {layer.name for layer in model.layers}
    blocks = len([n for n in layers if re.fullmatch(rf"conv_\d+{re.escape(tags[0])}", n)])
    for g in spec.groups:
        for name in g.inputs:
            if name not in have:
                raise SpecError(f"input group '{g.name}': the network has no input '{name}' (model inputs: "
                                f"{', '.join(sorted(have))})")
        if g.kind == "numeric" and int(have[g.name].shape[-1]) != g.width:
            raise SpecError(f"input group '{g.name}': the network's input '{g.name}' has width "
                            f"{int(have[g.name].shape[-1])}, the spec's {len(g.columns)} columns need {g.width}")
        for tag in tags:
            absent = [n for n in branch_layers(g, blocks, tag) if n not in layers]
            if absent:
                raise SpecError(f"input group '{g.name}': the spec's encoder/head split disagrees with the network, "
                                f"which has no layer {', '.join(repr(n) for n in absent)}")
    extra = sorted(set(have) - set(spec.input_names()))
    if extra:
        raise SpecError(f"the network reads input(s) {', '.join(extra)} that no input group of the spec declares "
                        f"(groups: {', '.join(spec.names)})")


def split_model(model, spec: ModelSpec) -> SplitModel:
    """Rebuild ``model`` (see :mod:`hitcast.model.architecture`) as encoder + head sharing its layers, from
    the same definition of each group's branch as the network (:func:`~hitcast.model.architecture.branch_layers`,
    :func:`~hitcast.model.architecture.head_branch`), after :func:`check_spec`.

    ``encoder`` takes ``mel`` (batch, n_mels, n_frames) and returns each member's embedding (the output of
    the audio group's ``audio_dense``); ``head`` takes the other inputs of ``spec`` plus ``emb_<k>`` (batch,
    width) per member and returns ``{"hit", "popularity"?}`` equal to ``model``'s outputs for the same inputs.
    """
    import keras
    from keras import layers

    tags = _members(model)
    check_spec(model, spec, tags)
    L = model.get_layer
    encoder, width, ins = None, 0, {}
    for g in spec.groups:
        if g.kind in ENCODER_OUTPUT:
            embeddings = [L(f"{ENCODER_OUTPUT[g.kind]}{t}").output for t in tags]
            encoder = keras.Model(inputs=[model.input[n] for n in g.inputs if n != "has_audio"][0],
                                  outputs=embeddings)
            width = int(embeddings[0].shape[-1])
            ins["has_audio"] = keras.Input((1,), name="has_audio")
            for k in range(len(tags)):
                ins[f"emb_{k}"] = keras.Input((width,), name=f"emb_{k}")
        else:
            for name in g.inputs:
                ins[name] = keras.Input((int(model.input[name].shape[-1]),), name=name)
    names = {layer.name for layer in model.layers}
    heads: dict[str, list] = {}
    for k, t in enumerate(tags):
        parts = [x for g in spec.groups for x in head_branch(g, L, ins, t, k)]
        p = {"popularity_head": f"popularity{t}" in names}
        for out, tensor in fuse_and_heads(parts, p, t, layer=L).items():
            heads.setdefault(out, []).append(tensor)
    outputs = {k: v[0] if len(v) == 1 else layers.Average()(v) for k, v in heads.items()}
    return SplitModel(encoder, keras.Model(inputs=ins, outputs=outputs), width, len(tags))


def contributions(split: SplitModel, x: dict[str, np.ndarray], *, stats: TabularStats,
                  spec: ModelSpec, embeddings: Sequence[np.ndarray] | None = None,
                  ) -> tuple[dict[str, np.ndarray], list[str], np.ndarray]:
    """Model outputs and every reason's contribution for a batch of encoded inputs.

    The reasons come from the spec's groups, in spec order: the ``tabular`` group's feature groups
    (:func:`input_groups`) and ``genre``, ``audio`` (``has_audio`` 0), and each ``numeric`` group's label
    (every column missing).

    Parameters
    ----------
    x
        ``tabular`` (n, W), ``mel`` (n, n_mels, n_frames), ``has_audio`` (n, 1), ``<group>`` (n, 2C), as the
        spec uses.
    embeddings
        The audio encoder's output for ``x``'s rows, one (n, ``split.embedding_width``) array per member,
        when already known (then ``x`` needs no ``mel``); default ``split.encode(x["mel"])``.

    Returns
    -------
    (outputs, labels, contrib)
        ``outputs``: ``hit`` (n,) and maybe ``popularity`` (n,), equal to the full model's; ``labels``: the
        reason labels; ``contrib``: shape (n, len(labels)), ``p - p(group unknown)``.
    """
    n = len(next(iter(x.values())))
    variants: list[tuple[str, dict[str, np.ndarray]]] = [("", {})]
    for g in spec.groups:
        if g.kind == "tabular":
            for label, idx in input_groups(stats).items():
                variants.append((label, {"tabular": neutralise(x["tabular"], stats, features=idx)}))
            variants.append((GENRE, {"tabular": neutralise(x["tabular"], stats, genre=True)}))
        elif g.kind == "audio":
            variants.append((AUDIO, {"has_audio": np.zeros_like(x["has_audio"])}))
        else:
            variants.append((g.label, {g.name: neutral_numeric(x[g.name])}))
    feed: dict[str, np.ndarray] = {}
    if spec.uses_audio:
        for k, e in enumerate(split.encode(x["mel"]) if embeddings is None else embeddings):
            feed[f"emb_{k}"] = np.tile(e, (len(variants), 1))
    for key in spec.input_names():
        if key != "mel":
            feed[key] = np.concatenate([v.get(key, x[key]) for _, v in variants])
    out = {k: v.reshape(len(variants), n) for k, v in split.run_head(feed).items()}
    hit = out["hit"]
    labels = [label for label, _ in variants[1:]]
    contrib = (hit[0][:, None] - hit[1:].T) if labels else np.zeros((n, 0))
    return {k: v[0] for k, v in out.items()}, labels, contrib


def top_reasons(labels: Sequence[str], contrib: np.ndarray, top: int = 3) -> list[list[dict[str, Any]]]:
    """Per row, the ``top`` groups by absolute contribution: ``[{"input", "contribution"}, ...]``."""
    order = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :top]
    return [[{"input": labels[j], "contribution": float(contrib[i, j])} for j in row] for i, row in enumerate(order)]
