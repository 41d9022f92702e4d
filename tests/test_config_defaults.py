"""Every default lives in conf/base.yaml; the loader refuses what it does not know and checks mode strings."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from helpers import REPO
from hitcast.config import BASE_CONF, Config, base_config, load_config
from hitcast.errors import ConfigError


def test_base_yaml_sets_exactly_the_typed_keys():
    base = yaml.safe_load(BASE_CONF.read_text())
    sections = {k for k in base}
    assert sections == {f.name for f in dataclasses.fields(Config) if f.name != "source"}
    for section, values in base.items():
        typed = {f.name for f in dataclasses.fields(type(getattr(base_config(), section)))}
        assert set(values) == typed, section


def test_a_missing_key_is_named(tmp_path: Path):
    base = yaml.safe_load(BASE_CONF.read_text())
    del base["train"]["epochs"]
    path = tmp_path / "partial.yaml"
    path.write_text(yaml.safe_dump(base))
    with pytest.raises(ConfigError, match=r"configuration key train\.epochs is missing"):
        load_config(path)


@pytest.mark.parametrize("key, value, allowed", [
    ("train.variant", "cnn", "fused, tabular, audio"),
    ("train.scaling", "minmax", "piecewise, rank_gauss, standard"),
    ("train.lr_schedule", "step", "constant, cosine"),
    ("dsp.crop", "random", "center, start"),
    ("ingest.catalog_format", "xlsx", "auto, csv, json, parquet"),
    ("ingest.events_format", "csv", "auto, json, parquet"),
    ("evaluate.ablations", "[tabular, vision]", "fused, tabular, audio"),
])
def test_mode_strings_are_checked_at_load(key, value, allowed):
    with pytest.raises(ConfigError) as err:
        base_config([f"{key}={value}"])
    bad = value.strip("[]").split(", ")[-1]
    assert str(err.value) == f"configuration key {key}: {bad!r} is not one of {allowed}"


def test_removed_keys_are_refused():
    for key in ("spark.app_name=x", "features.score_as_of=2025-01-01", "evaluate.hit_predictor_epochs=3"):
        with pytest.raises(ConfigError, match="unknown configuration key"):
            base_config([key])


def test_every_conf_file_loads():
    for path in sorted((REPO / "conf").glob("*.yaml")):
        assert load_config(path).source == str(path)
