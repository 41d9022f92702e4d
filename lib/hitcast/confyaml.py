"""Reading configuration YAML (with ``extends``) and ``--set key=value`` overrides into nested dicts.

:mod:`hitcast.config` turns the result into typed dataclasses.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from hitcast.errors import ConfigError


def read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML mapping with its ``extends`` chain merged in (the file's own keys win)."""
    if path in seen:
        raise ConfigError(f"{path}: circular 'extends'")
    if not path.exists():
        raise ConfigError(f"configuration file not found: {path}")
    with path.open() as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    parent = data.pop("extends", None)
    if parent:
        base = read_yaml((path.parent / parent).resolve(), seen + (path,))
        return deep_merge(base, data)
    return data


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``over`` into ``base`` recursively; mappings merge, everything else replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """Turn ``["train.epochs=3", "spark.conf.spark.ui.enabled=false"]`` into a nested dict.

    Keys under ``spark.conf`` keep their dots (they are Spark setting names).
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        parts = key.strip().split(".")
        if parts[:2] == ["spark", "conf"] and len(parts) > 2:
            parts = ["spark", "conf", ".".join(parts[2:])]
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {key}: value {raw!r} is not valid YAML: {exc}") from exc
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out
