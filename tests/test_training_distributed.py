"""Distributed training on local[2]: two barrier workers, identical weights, loss goes down; registry (the
MLflow run and registered model, the models mirror), deterministic versions, skip on re-run, and the inference
bundle on literal rows, also through the MLflow registry."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from helpers import N_FRAMES, N_MELS, TINY_TRAIN, make_config, synth_frames
from hitcast.lifecycle import tracking
from hitcast.lifecycle.registry import ModelNotFoundError, resolve_model
from hitcast.lifecycle.training import train_and_register
from hitcast.model import store
from hitcast.model.bundle import CHUNK, load_bundle
from hitcast.tables import fingerprint


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    cfg = make_config(tmp, *TINY_TRAIN)
    examples, spectrograms = synth_frames(spark, 40)
    inputs = {"training_examples": {"delta_version": 3, "fingerprint": fingerprint(examples)},
              "spectrograms": {"delta_version": 1, "fingerprint": fingerprint(spectrograms, ["computed_at"])}}
    out = train_and_register(spark, cfg, examples, spectrograms=spectrograms, inputs=inputs)
    return cfg, examples, spectrograms, inputs, out


def test_two_workers_identical_weights_and_loss_goes_down(trained):
    _, _, _, _, out = trained
    m = out.metrics
    assert not out.skipped
    assert len(m["worker_checksums"]) == 2
    assert m["worker_checksums"][0] == m["worker_checksums"][1]
    losses = m["losses"]
    assert len(losses) == 4
    assert losses[-1] < losses[0] * 0.8
    # 40 tracks x 2 train cutoffs = 80 rows over 4 files: shards of 40 rows -> 5 steps of 8
    assert m["shard_rows"] == [40, 40]
    assert m["steps_per_epoch"] == 5
    assert [h["epoch"] for h in m["history"]] == [1, 2, 3, 4]


def test_chief_saves_the_epoch_with_the_best_validation_auc(trained):
    import keras

    from hitcast.model.architecture import weights_checksum

    m = trained[-1].metrics
    aucs = [h["val_auc"] for h in m["history"]]
    assert m["best_epoch"] == 1 + int(np.argmax(aucs))          # first of equal bests
    assert m["validation"]["epoch"] == m["best_epoch"] and m["validation"]["val_auc"] == max(aucs)
    saved = weights_checksum(keras.saving.load_model(trained[-1].path / "model.keras", compile=False))
    assert (saved == m["checksum"]) == (m["best_epoch"] == 4)  # "checksum" is of the last epoch's weights


def test_version_files_and_models_row(spark, trained):
    cfg, _, _, _, out = trained
    assert out.version.startswith("fused-") and len(out.version) == len("fused-") + 12
    for name in ("model.keras", "stats.json", "config.yaml", "metrics.json", "inputs.json"):
        assert (out.path / name).is_file(), name
    stats = json.loads((out.path / "stats.json").read_text())
    assert stats["features"] == ["plays_7d", "skip_rate_28d", "danceability", "days_since_release"]
    assert stats["genres"] == ["jazz", "pop", "rock"]
    assert (stats["n_mels"], stats["n_frames"]) == (N_MELS, N_FRAMES)
    models = spark.read.format("delta").load(cfg.table("models"))
    assertDataFrameEqual(models.select("model_version", "variant", "workers", "path", "role", "role_reason"),
                         [Row(model_version=out.version, variant="fused", workers=2, path=str(out.path),
                              role="candidate", role_reason="trained")])
    assert json.loads(models.first().metrics)["checksum"] == out.metrics["checksum"]


def test_the_validation_threshold_of_the_kept_epoch_is_saved(spark, trained):
    from hitcast.metrics import bootstrap_threshold
    from hitcast.model.dataset import join_spectrograms

    _, examples, spectrograms, _, out = trained
    m = out.metrics
    assert m["threshold"] == m["validation"]["val_threshold"] == json.loads((out.path / "metrics.json")
                                                                             .read_text())["threshold"]
    val = join_spectrograms(examples.where("split = 'validation'"), spectrograms).toPandas()
    bundle = load_bundle(out.path)
    p = bundle.predict_pandas(val)["hit_probability"].to_numpy()
    assert bundle.threshold == m["threshold"]
    # train.threshold: f1_bootstrap (base.yaml)
    assert m["threshold"] == pytest.approx(bootstrap_threshold(val["is_hit"].to_numpy(), p), abs=1e-5)


def test_rerun_skips_and_version_is_deterministic(spark, trained):
    cfg, examples, spectrograms, inputs, out = trained
    again = train_and_register(spark, cfg, examples, spectrograms=spectrograms, inputs=inputs)
    assert (again.version, again.skipped) == (out.version, True)
    rows = spark.read.format("delta").load(cfg.table("models")).collect()
    assert [(r["model_version"], r["role"], r["mlflow_version"]) for r in rows] == [(out.version, "candidate", "1")]
    mlc = tracking.client(cfg)
    assert [v.version for v in mlc.search_model_versions("name='hitcast'")] == [1]      # no second version
    assert len(mlc.search_runs([tracking.experiment_id(cfg, mlc)])) == 1                   # nor a second run
    other = store.model_version("fused", inputs, {"epochs": 5})
    assert other != out.version and other == store.model_version("fused", inputs, {"epochs": 5})


def test_mlflow_run_has_the_parameters_epochs_and_lineage(trained):
    cfg, _, _, _, out = trained
    mlc = tracking.client(cfg)
    assert tracking.tracking_uri(cfg) == f"sqlite:///{cfg.path('data/mlflow')}/mlflow.db"
    (run,) = mlc.search_runs([tracking.experiment_id(cfg, mlc)])
    assert run.info.run_name == out.version and run.data.tags["variant"] == "fused"
    params = run.data.params
    assert (params["train.epochs"], params["train.batch_size"]) == ("4", str(cfg.train.batch_size))
    assert params["input.training_examples.delta_version"] == "3"
    assert params["input.training_examples.rows"] == str(inputs_rows(trained)) == "160"
    assert params["input.spectrograms.delta_version"] == "1"
    for name in ("loss", "val_auc"):
        logged = sorted((m.step, m.value) for m in mlc.get_metric_history(run.info.run_id, name))
        assert logged == [(h["epoch"], pytest.approx(h[name], abs=1e-12)) for h in out.metrics["history"]], name
    assert run.data.metrics["threshold"] == pytest.approx(out.metrics["threshold"], abs=1e-12)
    kept = out.metrics["validation"]
    assert run.data.metrics["kept_val_auc"] == pytest.approx(kept["val_auc"], abs=1e-12)
    (mv,) = mlc.search_model_versions("name='hitcast'")
    assert mv.run_id == run.info.run_id
    assert (mv.tags["hitcast_version"], mv.tags["variant"], mv.tags["role"]) == (out.version, "fused", "candidate")
    artifacts = {a.path for a in mlc.list_artifacts(run.info.run_id, "version")}
    assert artifacts == {"version/metrics.json", "version/inputs.json", "version/stats.json", "version/spec.json",
                         "version/config.yaml"}


def inputs_rows(trained) -> int:
    return trained[3]["training_examples"]["fingerprint"]["rows"]


def test_resolve_and_bundle_predicts_literal_rows(spark, trained):
    cfg, _, _, _, out = trained
    assert resolve_model(spark, cfg, "latest") == (out.version, out.path)
    assert resolve_model(spark, cfg, out.version) == (out.version, out.path)
    with pytest.raises(ModelNotFoundError, match="model version 'fused-nope' not found"):
        resolve_model(spark, cfg, "fused-nope")
    bundle = load_bundle(out.path)
    assert (bundle.version, bundle.variant) == (out.version, "fused")
    assert bundle.feature_columns == ["plays_7d", "skip_rate_28d", "danceability", "days_since_release"]
    bright = np.zeros((N_MELS, N_FRAMES), np.uint8)
    bright[2:5] = 220
    pdf = pd.DataFrame({
        "plays_7d": [90.0, None, 5.0], "skip_rate_28d": [0.1, None, 0.9], "danceability": [0.9, 0.5, 0.1],
        "days_since_release": [100, 120, 130], "genre": ["pop", "polka", None],
        "mel": [bright.tobytes(), None, bytes(N_MELS * N_FRAMES)], "n_mels": [N_MELS, None, N_MELS],
        "n_frames": [N_FRAMES, None, N_FRAMES], "status": ["ok", "missing", "ok"],
    }, index=[10, 11, 12])
    scores = bundle.predict_pandas(pdf)
    # The same rows through the MLflow registry (the pyfunc wrapping the bundle) score the same, to 1e-6.
    import mlflow

    tracking.client(cfg)
    served = mlflow.pyfunc.load_model("models:/hitcast/1").predict(pdf)
    assert list(served.columns) == ["hit_probability", "popularity_score"]
    np.testing.assert_allclose(served.to_numpy(), scores.to_numpy(), rtol=0, atol=1e-6)
    assert list(scores.index) == [10, 11, 12]
    assert list(scores.columns) == ["hit_probability", "popularity_score"]
    assert list(scores.dtypes) == [np.float64, np.float64]
    p, pop = scores["hit_probability"].to_numpy(), scores["popularity_score"].to_numpy()
    assert p[0] > 0.5 > p[2]              # loud, bright, danceable vs. quiet, dull, skipped
    assert pop[0] > pop[2] + 1.0          # the popularity head agrees, in percent (synthetic popularity 0..100)
    # An unknown genre scores as no genre; the mel bytes are read only when status is 'ok'.
    first = pdf.iloc[[0, 0]]
    genre = bundle.predict_pandas(first.assign(genre=["polka", None]))["hit_probability"].to_numpy()
    assert genre[0] == pytest.approx(genre[1], abs=1e-6)
    audio = bundle.predict_pandas(first.assign(status="missing", mel=[bright.tobytes(), None]))["hit_probability"]
    assert audio.iloc[0] == pytest.approx(audio.iloc[1], abs=1e-6) and abs(audio.iloc[0] - p[0]) > 1e-3
    # Over more rows than one model call takes (CHUNK), each row keeps its own index and its own scores.
    n = 2 * CHUNK + 5
    many = bundle.predict_pandas(pdf.iloc[np.arange(n) % 3].set_axis(np.arange(n)[::-1]))
    assert list(many.index) == list(np.arange(n)[::-1])
    np.testing.assert_allclose(many.to_numpy(), scores.to_numpy()[np.arange(n) % 3], rtol=1e-5, atol=1e-7)


def test_latest_without_models_table_is_a_clear_error(spark, tmp_path):
    cfg = make_config(tmp_path)
    with pytest.raises(ModelNotFoundError, match="Delta table 'models' not found at .*; run jobs/train.py"):
        resolve_model(spark, cfg, "latest")
    with pytest.raises(ModelNotFoundError, match="no champion model: the MLflow model 'hitcast' at sqlite:///.* has "
                                                 "no alias 'champion'; promote a candidate with jobs/promote.py"):
        resolve_model(spark, cfg)
