"""The model spec: the one definition of what a model reads, saved with every model version as ``spec.json``.

An :class:`InputGroup` is one thing the model reads about a track, with where it comes from; a
:class:`ModelSpec` is the ordered groups of one model. Everything that depends on the inputs asks the spec:

- the network (:func:`hitcast.model.architecture.build_model`: one branch per group, in spec order) and its
  encoder/head split (:func:`hitcast.model.explain.split_model`, checked against the network);
- the data readers (:mod:`hitcast.model.dataset`: the Petastorm rows; :mod:`hitcast.scoring.inputs`: the
  source columns scoring joins, which ``source_hash`` covers; :func:`hitcast.model.dataset.model_inputs`:
  the encoded arrays of training, inference and scoring);
- ``input_hash`` (:mod:`hitcast.scoring.predict`: the encoded arrays of every group, in spec order);
- the reasons (:func:`hitcast.model.explain.contributions`: one or more labels per group);
- the ablations (a variant is a subset of the groups: :meth:`ModelSpec.for_variant`).

Group kinds
-----------
``tabular``
    The feature row itself (``training_examples`` / ``scoring_features``): every numeric feature and the
    genre, encoded by :func:`hitcast.model.tabular.encode_tabular`. Model input ``tabular`` (batch, W).
``audio``
    The log-mel spectrogram from ``spectrograms`` (``mel``, ``n_mels``, ``n_frames``; identified by
    ``status``, ``content_hash``, ``dsp_version``). Model inputs ``mel`` (batch, n_mels, n_frames) and
    ``has_audio`` (batch, 1). Its CNN is the encoder of the split.
``numeric``
    Numeric columns of another table keyed by ``track_id`` (one row per track), e.g. lyrics statistics or
    an artist embedding: standardised with the train split's mean and std, with a missing indicator per
    column (:func:`hitcast.model.tabular.encode_numeric`). Model input ``<name>`` (batch, 2 * len(columns)).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from hitcast.errors import HitcastError

#: The file of a model version directory that holds its spec.
SPEC_FILE = "spec.json"
KINDS = ("tabular", "audio", "numeric")
#: Model input names the built-in kinds use (a numeric group's name must be none of them).
RESERVED = frozenset({"tabular", "mel", "has_audio"})
#: The spec's variant that reads every group.
FULL = "fused"


class SpecError(HitcastError):
    """A model spec is inconsistent, or disagrees with a network or with its inputs (the message names the group)."""


@dataclass(frozen=True)
class InputGroup:
    """One input group: what the model reads, where it comes from, how it is encoded.

    Attributes
    ----------
    name : str
        The group's name (a numeric group's model input and layer names are built from it).
    kind : {"tabular", "audio", "numeric"}
        See the module docstring.
    source : str
        The table the group's columns come from (a name for :meth:`hitcast.config.Config.table`);
        ``features`` for the feature row itself.
    columns : tuple of str
        Source columns the model reads (empty for ``tabular``: every numeric feature of the row).
    identity : tuple of str
        Source columns scoring joins to every track before deciding what changed: ``source_hash`` covers
        them, so a change to any of them rescores the track. For ``numeric`` groups, ``columns``.
    heavy : tuple of str
        Source columns attached only to the tracks that go to the model, left out of ``source_hash``
        (covered by ``identity``): the ``audio`` group's mel bytes.
    label : str
        The reason label of the group in explanations (``tabular`` has finer labels of its own).
    key : str
        The join key of ``source``.
    """

    name: str
    kind: str
    source: str
    columns: tuple[str, ...] = ()
    identity: tuple[str, ...] = ()
    heavy: tuple[str, ...] = ()
    label: str = ""
    key: str = "track_id"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SpecError(f"input group '{self.name}': kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.kind == "numeric":
            if self.name in RESERVED or self.name.startswith("emb_"):
                raise SpecError(f"input group '{self.name}': that name is a model input of another kind")
            if not self.columns:
                raise SpecError(f"input group '{self.name}': a numeric group needs columns")
            if set(self.identity) != set(self.columns):
                object.__setattr__(self, "identity", tuple(self.columns))
        for attr in ("columns", "identity", "heavy"):
            object.__setattr__(self, attr, tuple(getattr(self, attr)))
        if not self.label:
            object.__setattr__(self, "label", self.name)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The model inputs of this group."""
        return {"tabular": ("tabular",), "audio": ("mel", "has_audio")}.get(self.kind, (self.name,))

    @property
    def width(self) -> int:
        """A numeric group's input width, ``2 * len(columns)`` (0 for the other kinds)."""
        return 2 * len(self.columns) if self.kind == "numeric" else 0


#: The feature row: numeric features and genre of ``training_examples`` / ``scoring_features``.
TABULAR = InputGroup("tabular", "tabular", "features")
#: The spectrogram of the track's audio.
AUDIO = InputGroup("audio", "audio", "spectrograms", columns=("mel", "n_mels", "n_frames"),
                   identity=("status", "content_hash", "dsp_version"), heavy=("mel", "n_mels", "n_frames"))


@dataclass(frozen=True)
class ModelSpec:
    """The ordered input groups of a model.

    Attributes
    ----------
    groups : tuple of InputGroup
        In network order (the branches are built, concatenated and hashed in this order).
    variant : str
        ``fused`` (every group), or the name of the one group a single-input variant keeps.
    """

    groups: tuple[InputGroup, ...]
    variant: str = FULL

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(self.groups))
        if not self.groups:
            raise SpecError("a model spec needs at least one input group")
        names = [g.name for g in self.groups]
        for name in names:
            if names.count(name) > 1:
                raise SpecError(f"input group '{name}' appears twice in the spec")
        for kind in ("tabular", "audio"):
            if sum(g.kind == kind for g in self.groups) > 1:
                raise SpecError(f"more than one {kind} group in the spec: "
                                f"{', '.join(g.name for g in self.groups if g.kind == kind)}")

    @property
    def names(self) -> list[str]:
        return [g.name for g in self.groups]

    def group(self, name: str) -> InputGroup:
        """The group ``name``.

        Raises
        ------
        SpecError
            When the spec has no such group (the message names it and the spec's groups).
        """
        for g in self.groups:
            if g.name == name:
                return g
        raise SpecError(f"unknown input group '{name}' (the spec has {', '.join(self.names)})")

    def has(self, kind: str) -> bool:
        return any(g.kind == kind for g in self.groups)

    def of_kind(self, kind: str) -> list[InputGroup]:
        return [g for g in self.groups if g.kind == kind]

    @property
    def uses_audio(self) -> bool:
        return self.has("audio")

    def input_names(self) -> list[str]:
        """Every model input, in spec order."""
        return [name for g in self.groups for name in g.inputs]

    @property
    def variants(self) -> tuple[str, ...]:
        """``fused`` and, per group, the variant of that group alone."""
        return (FULL, *self.names)

    def for_variant(self, variant: str) -> "ModelSpec":
        """The spec of ``variant``: every group (``fused``) or the group named ``variant`` alone.

        Raises
        ------
        hitcast.errors.ConfigError
            When ``variant`` is neither (the message lists the variants).
        """
        if variant == FULL:
            return dataclasses.replace(self, variant=FULL)
        if variant not in self.names:
            from hitcast.errors import ConfigError

            raise ConfigError(f"train.variant must be one of {', '.join(self.variants)}, got {variant!r}")
        return ModelSpec((self.group(variant),), variant)

    def with_group(self, group: InputGroup) -> "ModelSpec":
        """A copy with ``group`` appended (the way to add an input)."""
        return dataclasses.replace(self, groups=(*self.groups, group))

    def source_columns(self, source: str) -> list[str]:
        """Every ``identity`` column the spec reads from the table ``source``."""
        return [c for g in self.groups if g.source == source for c in g.identity]

    def sources(self) -> tuple[str, ...]:
        """The tables of the ``numeric`` groups (the feature row and ``spectrograms`` are built in)."""
        return tuple(g.source for g in self.of_kind("numeric"))

    def heavy_columns(self) -> list[str]:
        return [c for g in self.groups for c in g.heavy]

    def to_dict(self) -> dict[str, Any]:
        return {"variant": self.variant, "groups": [dataclasses.asdict(g) for g in self.groups]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelSpec":
        return cls(tuple(InputGroup(**g) for g in data["groups"]), data.get("variant", FULL))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


#: The catalog model's spec: the feature row and the audio. Add an input here (see the README's "Adding an input").
DEFAULT_SPEC = ModelSpec((TABULAR, AUDIO))


def save_spec(directory: str | os.PathLike[str], spec: ModelSpec) -> Path:
    """Write ``spec`` as ``directory/spec.json``; returns the path."""
    path = Path(directory) / SPEC_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec.to_json())
    return path


def load_spec(directory: str | os.PathLike[str]) -> ModelSpec:
    """The spec of the model version directory ``directory``: its ``spec.json``, or for a version saved
    before specs existed, :data:`DEFAULT_SPEC`'s variant named in its ``stats.json``."""
    path = Path(directory) / SPEC_FILE
    if path.is_file():
        return ModelSpec.from_dict(json.loads(path.read_text()))
    from hitcast.model.tabular import TabularStats

    stats = TabularStats.from_json((Path(directory) / "stats.json").read_text())
    return DEFAULT_SPEC.for_variant(stats.extra.get("variant", FULL))
