"""Model roles and promotion on real Spark, Delta and TensorFlow: tiny tabular models with known weights, so each
model's test-split ROC-AUC and F1 are known exactly.

The test split has 10 tracks with danceability 0.05, 0.15, ..., 0.95; a track is a hit when it is above 0.5.
A model here computes ``sigmoid(slope * (danceability - 0.5))``:

- ``tabular-good`` (slope 4, threshold 0.5): ROC-AUC 1, F1 1;
- ``tabular-bad`` (slope -4, threshold 0.5): ROC-AUC 0, F1 0;
- ``tabular-high`` (slope 4, threshold 0.6): ROC-AUC 1, but 0.55 scores sigmoid(0.2) = 0.550 < 0.6, so
  4 of 5 hits are found: F1 8/9.
"""
from __future__ import annotations

import datetime as dt
import getpass
import importlib.util
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from helpers import EXAMPLES, REPO, make_config
from hitcast.lifecycle import registry, tracking
from hitcast.lifecycle.promote import PromotionError, PromotionRefused, run_promote
from hitcast.lifecycle.registry import ModelNotFoundError, RoleError, resolve_model
from hitcast.model import store
from hitcast.model.bundle import load_bundle
from hitcast.model.tabular import TabularStats
from hitcast.tables import table_exists

T0 = dt.datetime(2025, 10, 1, 12, 0)
MODELS = {"tabular-good": (4.0, 0.5), "tabular-bad": (-4.0, 0.5), "tabular-high": (4.0, 0.6)}


def save_model(directory: Path, version: str, *, slope: float, threshold: float | None) -> None:
    """A tabular model computing ``sigmoid(slope * (danceability - 0.5))``, saved as a version directory."""
    from hitcast.model.architecture import build_model

    stats = TabularStats(["danceability"], [0.0], [1.0], [], n_mels=1, n_frames=1,
                         extra={"version": version, "variant": "tabular"})
    model = build_model(tabular_width=stats.width, n_mels=1, n_frames=1, variant="tabular",
                        popularity_head=False, dense_units=2, dropout=0.0)
    picks = {"mlp_1": np.eye(stats.width, 2, dtype=np.float32),        # unit 0 = the danceability value
             "mlp_2": np.array([[1.0], [0.0]], np.float32), "head": np.ones((1, 1), np.float32),
             "hit": np.full((1, 1), slope, np.float32)}
    for name, kernel in picks.items():
        layer = model.get_layer(name)
        bias = np.full(layer.get_weights()[1].shape, -0.5 * slope if name == "hit" else 0.0, np.float32)
        layer.set_weights([kernel, bias])
    directory.mkdir(parents=True)
    model.save(directory / store.MODEL_FILE)
    metrics = {} if threshold is None else {"threshold": threshold}
    store.write_version_files(directory, stats_json=stats.to_json(), config={}, metrics=metrics, inputs={})


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """The version directories of :data:`MODELS`, plus ``tabular-nothreshold`` (no saved threshold)."""
    root = tmp_path_factory.mktemp("promote-models")
    for version, (slope, threshold) in MODELS.items():
        save_model(root / version, version, slope=slope, threshold=threshold)
    save_model(root / "tabular-nothreshold", "tabular-nothreshold", slope=4.0, threshold=None)
    return root


def overrides(model_dir: Path) -> list[str]:
    return [f"paths.models={model_dir}", "train.variant=tabular"]


def promote_job():
    """``jobs/promote.py`` as a module (``jobs/`` is not a package)."""
    spec = importlib.util.spec_from_file_location("promote_job", REPO / "jobs" / "promote.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def cfg(spark, tmp_path, model_dir):
    """A warehouse with the 10 test rows (and 2 train rows the promotion must not read)."""
    cfg = make_config(tmp_path, *overrides(model_dir))
    rows = [(f"t{i}", dt.date(2025, 9, 1), "test", "a1", "A", "pop", dt.date(2024, 6, 1), False, 0, 50.0,
             int(0.05 + 0.1 * i > 0.5), None, None, 0.05 + 0.1 * i, 100) for i in range(10)]
    rows += [(f"t{i}", dt.date(2025, 3, 1), "train", "a1", "A", "pop", dt.date(2024, 6, 1), False, 0, 50.0,
              int(i == 0), None, None, 0.9 - 0.8 * i, 100) for i in range(2)]   # reversed: would spoil figures
    spark.createDataFrame(rows, EXAMPLES).write.format("delta").save(cfg.table("training_examples"))
    return cfg


def register(spark, cfg, version: str, minutes: int, **kwargs) -> None:
    registry.register(spark, cfg, version, variant="tabular", workers=1, metrics={"run": minutes}, inputs={},
                      config={}, created_at=T0 + dt.timedelta(minutes=minutes), **kwargs)


def roles(spark, cfg) -> list[Row]:
    return (registry.read_models(spark, cfg).select("model_version", "role", "role_reason")
            .orderBy("model_version").collect())


def mlflow_tags(cfg, version: str) -> dict[str, str]:
    """The tags of the MLflow registered version of a hitcast ``version``."""
    return dict(tracking.find_version(cfg, tracking.client(cfg), version).tags)


def promotions(spark, cfg) -> list[Row]:
    return (spark.read.format("delta").load(cfg.table("model_promotions")).orderBy("promoted_at")
            .drop("promoted_at").collect())


def test_first_promotion_makes_the_newest_candidate_champion(spark, cfg, model_dir):
    register(spark, cfg, "tabular-bad", 0)
    register(spark, cfg, "tabular-good", 1)
    assert roles(spark, cfg) == [Row(model_version="tabular-bad", role="candidate", role_reason="trained"),
                                 Row(model_version="tabular-good", role="candidate", role_reason="trained")]
    with pytest.raises(ModelNotFoundError, match=r"no champion model: the MLflow model 'hitcast' at .* has no alias "
                                                 r"'champion'; promote a candidate with jobs/promote.py \(or name a "
                                                 r"version with --model-version\)$"):
        resolve_model(spark, cfg, "champion")
    assert tracking.champion(cfg) is None

    summary = run_promote(spark, cfg)

    reason = "first champion; test ROC-AUC 1.0000, F1 1.0000 on 10 rows"
    assert (summary.version, summary.previous, summary.promoted, summary.forced, summary.reason,
            summary.test_rows) == ("tabular-good", None, True, False, reason, 10)
    assert str(summary) == f"model version tabular-good is the champion (the first champion): {reason}"
    assert roles(spark, cfg) == [Row(model_version="tabular-bad", role="candidate", role_reason="trained"),
                                 Row(model_version="tabular-good", role="champion", role_reason=reason)]
    assert tracking.champion(cfg) == ("tabular-good", "2")        # the MLflow alias: registered version 2
    assert mlflow_tags(cfg, "tabular-good")["role"] == "champion"
    assert resolve_model(spark, cfg, "champion") == ("tabular-good", model_dir / "tabular-good")
    assert resolve_model(spark, cfg) == ("tabular-good", model_dir / "tabular-good")     # the default
    assert resolve_model(spark, cfg, "tabular-bad") == ("tabular-bad", model_dir / "tabular-bad")
    assert promotions(spark, cfg) == [Row(model_version="tabular-good", previous_champion=None, forced=False,
                                          reason=reason, promoted_by=getpass.getuser(), test_rows=10,
                                          candidate_roc_auc=1.0, candidate_f1=1.0, candidate_threshold=0.5,
                                          champion_roc_auc=None, champion_f1=None, champion_threshold=None)]
    # Re-running (make demo twice): the champion is the newest model of the variant, nothing to do.
    again = run_promote(spark, cfg)
    assert (again.version, again.promoted, str(again)) == \
        ("tabular-good", False, "model version tabular-good already is the champion; nothing changed")
    assert len(promotions(spark, cfg)) == 1


def test_a_worse_candidate_is_refused_with_both_figures(spark, cfg):
    register(spark, cfg, "tabular-good", 0)
    registry.set_role(spark, cfg, "tabular-good", "champion", reason="set up")
    register(spark, cfg, "tabular-bad", 1)

    with pytest.raises(PromotionRefused) as err:
        run_promote(spark, cfg)

    assert str(err.value) == (
        "model version tabular-bad not promoted: on the 10 test rows of training_examples it is worse than the "
        "champion tabular-good beyond the margin on ROC-AUC and F1: ROC-AUC 0.0000 vs 1.0000 "
        "(promote.margin_roc_auc 0.005), F1 0.0000 vs 1.0000 at thresholds 0.500 and 0.500 "
        "(promote.margin_f1 0.01); jobs/promote.py --force --reason TEXT promotes it anyway")
    assert [(r.model_version, r.role) for r in roles(spark, cfg)] == [("tabular-bad", "candidate"),
                                                                      ("tabular-good", "champion")]
    assert not table_exists(spark, cfg.table("model_promotions"))
    assert tracking.champion(cfg) == ("tabular-good", "1")        # the alias stays
    tags = mlflow_tags(cfg, "tabular-bad")
    assert (tags["role"], tags["promotion_refused"]) == ("candidate", str(err.value))


def test_margins_decide_and_each_model_is_judged_at_its_own_threshold(spark, tmp_path, model_dir, cfg):
    register(spark, cfg, "tabular-good", 0)
    registry.set_role(spark, cfg, "tabular-good", "champion", reason="set up")
    register(spark, cfg, "tabular-high", 1)
    with pytest.raises(PromotionRefused) as err:
        run_promote(spark, cfg, version="tabular-high")
    assert str(err.value) == (
        "model version tabular-high not promoted: on the 10 test rows of training_examples it is worse than the "
        "champion tabular-good beyond the margin on F1: ROC-AUC 1.0000 vs 1.0000 (promote.margin_roc_auc 0.005), "
        "F1 0.8889 vs 1.0000 at thresholds 0.600 and 0.500 (promote.margin_f1 0.01); "
        "jobs/promote.py --force --reason TEXT promotes it anyway")

    wide = make_config(tmp_path, *overrides(model_dir), "promote.margin_f1=0.2")
    summary = run_promote(spark, wide, version="tabular-high")

    reason = ("within the margins of champion tabular-good; test ROC-AUC 1.0000 vs 1.0000, "
              "F1 0.8889 vs 1.0000 on 10 rows")
    assert (summary.previous, summary.forced, summary.reason) == ("tabular-good", False, reason)
    assert str(summary) == ("model version tabular-high is the champion, replacing tabular-good (now archived): "
                            + reason)
    assert roles(spark, cfg) == [
        Row(model_version="tabular-good", role="archived", role_reason="replaced as champion by tabular-high"),
        Row(model_version="tabular-high", role="champion", role_reason=reason)]
    last = promotions(spark, cfg)[-1]
    assert (last.previous_champion, last.candidate_roc_auc, last.champion_roc_auc, last.champion_f1,
            last.champion_threshold, last.candidate_threshold) == ("tabular-good", 1.0, 1.0, 1.0, 0.5, 0.6)
    assert last.candidate_f1 == pytest.approx(8 / 9, abs=1e-12)


def test_force_records_the_reason_and_archives_the_old_champion(spark, cfg, model_dir):
    register(spark, cfg, "tabular-good", 0)
    registry.set_role(spark, cfg, "tabular-good", "champion", reason="set up")
    register(spark, cfg, "tabular-bad", 1)
    with pytest.raises(PromotionError, match=r"^--force needs --reason TEXT: the reason is recorded in "
                                             r"models.role_reason and model_promotions$"):
        run_promote(spark, cfg, force=True, reason="  ")

    summary = run_promote(spark, cfg, force=True, reason="label deal: score with the new model from Monday")

    reason = ("forced: label deal: score with the new model from Monday; test ROC-AUC 0.0000 vs 1.0000, "
              "F1 0.0000 vs 1.0000 on 10 rows")
    assert (summary.version, summary.previous, summary.forced, summary.reason) == \
        ("tabular-bad", "tabular-good", True, reason)
    assert roles(spark, cfg) == [
        Row(model_version="tabular-bad", role="champion", role_reason=reason),
        Row(model_version="tabular-good", role="archived", role_reason="replaced as champion by tabular-bad")]
    assert resolve_model(spark, cfg, "champion") == ("tabular-bad", model_dir / "tabular-bad")
    assert tracking.champion(cfg) == ("tabular-bad", "2")
    assert mlflow_tags(cfg, "tabular-bad")["promotion_forced"] == "label deal: score with the new model from Monday"
    assert mlflow_tags(cfg, "tabular-good")["role"] == "archived"
    assert promotions(spark, cfg)[-1] == Row(
        model_version="tabular-bad", previous_champion="tabular-good", forced=True, reason=reason,
        promoted_by=getpass.getuser(), test_rows=10, candidate_roc_auc=0.0, candidate_f1=0.0,
        candidate_threshold=0.5, champion_roc_auc=1.0, champion_f1=1.0, champion_threshold=0.5)
    # Rolling back: the archived version is promoted again (it is better), the forced one is archived.
    back = run_promote(spark, cfg, version="tabular-good")
    assert (back.previous, back.forced) == ("tabular-bad", False)
    assert [(r.model_version, r.role) for r in roles(spark, cfg)] == [("tabular-bad", "archived"),
                                                                      ("tabular-good", "champion")]
    champions = registry.read_models(spark, cfg).where("role = 'champion'").select("model_version").collect()
    assert champions == [Row(model_version="tabular-good")]
    assert tracking.champion(cfg) == ("tabular-good", "1")
    assert (mlflow_tags(cfg, "tabular-good")["role"], mlflow_tags(cfg, "tabular-bad")["role"]) == \
        ("champion", "archived")


def test_a_reregistered_champion_keeps_its_role_and_ablations_are_not_latest(spark, cfg, model_dir):
    register(spark, cfg, "tabular-good", 0)
    registry.set_role(spark, cfg, "tabular-good", "champion", reason="set up")
    register(spark, cfg, "tabular-good", 5)              # training re-run (e.g. --force) re-registers it
    row = registry.read_models(spark, cfg).where("model_version = 'tabular-good'").first()
    assert (row.role, row.role_reason, json.loads(row.metrics), row.created_at) == \
        ("champion", "set up", {"run": 5},
         T0 + dt.timedelta(minutes=5))
    with pytest.raises(RoleError, match=r"^model version tabular-good is the champion and stays so until another "
                                        r"version is promoted with jobs/promote.py; not made ablation$"):
        registry.set_role(spark, cfg, "tabular-good", "ablation", reason="evaluation ablation")

    register(spark, cfg, "tabular-high", 6)
    registry.set_role(spark, cfg, "tabular-high", "ablation", reason="evaluation ablation")
    registry.set_role(spark, cfg, "tabular-high", "ablation", reason="again")      # idempotent: unchanged
    register(spark, cfg, "tabular-high", 7)
    assert roles(spark, cfg)[-1] == Row(model_version="tabular-high", role="ablation",
                                        role_reason="evaluation ablation")
    assert resolve_model(spark, cfg, "latest") == ("tabular-good", model_dir / "tabular-good")
    with pytest.raises(RoleError, match=r"role must be one of candidate, champion, ablation, archived, got 'best'"):
        registry.set_role(spark, cfg, "tabular-high", "best", reason="")
    with pytest.raises(PromotionError, match=r"^model version tabular-high has role ablation, not candidate or "
                                             r"archived; jobs/promote.py --force --reason TEXT promotes it anyway$"):
        run_promote(spark, cfg, version="tabular-high")


def test_a_models_table_from_before_roles_gains_the_columns(spark, cfg):
    from pyspark.sql.types import StructType

    old = StructType([f for f in registry.MODELS.fields
                      if f.name not in {*registry.ROLE_COLUMNS, *registry.LATER_COLUMNS}])
    spark.createDataFrame([("tabular-bad", "tabular", T0, "x", 1, "{}", "{}", "{}")], old) \
        .write.format("delta").save(cfg.table("models"))
    register(spark, cfg, "tabular-good", 1)
    assert roles(spark, cfg) == [
        Row(model_version="tabular-bad", role="candidate", role_reason="registered before model roles"),
        Row(model_version="tabular-good", role="candidate", role_reason="trained")]


def test_the_bundle_exposes_the_saved_threshold(model_dir):
    assert load_bundle(model_dir / "tabular-high").threshold == 0.6
    assert load_bundle(model_dir / "tabular-nothreshold").threshold == 0.5


def test_the_job_refuses_with_exit_status_2_and_records_a_forced_reason(spark, cfg, tmp_path, model_dir,
                                                                       monkeypatch, caplog, capsys):
    main = promote_job().main
    register(spark, cfg, "tabular-good", 0)
    registry.set_role(spark, cfg, "tabular-good", "champion", reason="set up")
    register(spark, cfg, "tabular-bad", 1)
    monkeypatch.setattr("hitcast.spark.build_session", lambda cfg, name: spark)
    monkeypatch.setattr(spark, "stop", lambda: None)            # the session fixture outlives the job
    args = [a for o in ["spark.master=local[2]", f"paths.root={tmp_path}", "paths.warehouse=warehouse",
                        *overrides(model_dir)] for a in ("--set", o)]
    with caplog.at_level(logging.ERROR, logger="hitcast.cli"):
        assert main(args) == 2
    assert "model version tabular-bad not promoted: on the 10 test rows" in caplog.text
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--force"])
    assert exit_.value.code == 2
    assert "--force needs --reason TEXT" in capsys.readouterr().err
    assert main([*args, "--force", "--reason", "A&R asked"]) == 0
    assert [(r.model_version, r.role, r.role_reason.split(";")[0]) for r in roles(spark, cfg)] == \
        [("tabular-bad", "champion", "forced: A&R asked"), ("tabular-good", "archived", "replaced as champion by "
                                                                                      "tabular-bad")]


def test_the_leaderboard_shows_promotion_and_evaluation_figures_ablations_included(spark, cfg):
    from hitcast.sql.views import create_statement, load_views, view_parameters

    register(spark, cfg, "tabular-bad", 0)
    register(spark, cfg, "tabular-good", 1)
    run_promote(spark, cfg)                                   # promotion figures: ROC-AUC 1, F1 1
    register(spark, cfg, "tabular-high", 2, role="ablation", reason="evaluation ablation")
    figures = {"roc_auc": 0.9, "f1": 0.8, "threshold": 0.6, "rows": 10, "evaluated_at": "2025-10-02 08:00:00"}
    registry.record_test_figures(spark, cfg, "tabular-high", figures)
    assert json.loads(registry.read_models(spark, cfg).where("model_version = 'tabular-high'").first()
                      .test_metrics) == figures
    run = tracking.find_version(cfg, tracking.client(cfg), "tabular-high").run_id
    logged = tracking.client(cfg).get_run(run).data.metrics
    assert (logged["test_roc_auc"], logged["test_f1"], logged["test_rows"]) == (0.9, 0.8, 10.0)

    db = cfg.sql.tables_database
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {db}")
    for table in ("models", "model_promotions"):
        spark.sql(f"DROP TABLE IF EXISTS {db}.{table}")
        spark.sql(f"CREATE TABLE {db}.{table} USING delta LOCATION '{cfg.table(table)}'")
    (view,) = [v for v in load_views() if v.name == "model_leaderboard"]
    spark.sql(create_statement(view, view_parameters(cfg)))
    got = [tuple(r) for r in spark.sql("SELECT leaderboard_rank, model_version, role, test_roc_auc, test_f1, "
                                       "threshold, test_rows, CAST(tested_at AS STRING) FROM "
                                       "global_temp.model_leaderboard ORDER BY leaderboard_rank").collect()]
    for table in ("models", "model_promotions"):
        spark.sql(f"DROP TABLE {db}.{table}")
    assert got[1:] == [(2, "tabular-high", "ablation", 0.9, 0.8, 0.6, 10, "2025-10-02 08:00:00"),
                       (3, "tabular-bad", "candidate", None, None, None, None, None)]
    assert got[0][:7] == (1, "tabular-good", "champion", 1.0, 1.0, 0.5, 10)
