"""Model building blocks on literal rows: architecture variants, Spark standardisation stats vs NumPy,
missing indicators, the fixed-shape rows and what Petastorm feeds tf.data."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from helpers import EXAMPLES, N_FRAMES, N_MELS, synth_frames
from hitcast.errors import ConfigError
from hitcast.model import dataset
from hitcast.model.architecture import build_model, input_names
from hitcast.model.spec import DEFAULT_SPEC
from hitcast.model.tabular import FeatureError, TabularStats, compute_stats, encode_tabular, feature_columns


@pytest.mark.parametrize("variant,inputs,params", [
    # MLP 10*16+16 + 16*8+8 = 312; CNN 3*8*4 + 2*4 + 3*4*8 + 2*8 + (8+8)*8+8 = 352; heads 2*(8+1) = 18
    ("fused", ["tabular", "mel", "has_audio"], 312 + 352 + (8 + 8 + 1) * 8 + 8 + 18),
    ("tabular", ["tabular"], 312 + 8 * 8 + 8 + 18),
    ("audio", ["mel", "has_audio"], 352 + (8 + 1) * 8 + 8 + 18),
])
def test_architecture_variants_and_output_shapes(variant, inputs, params):
    model = build_model(tabular_width=10, n_mels=N_MELS, n_frames=N_FRAMES, variant=variant, popularity_head=True,
                        conv_filters=[4, 8],
                        dense_units=16, kernel_size=3)
    assert sorted(model.input.keys()) == sorted(inputs) == sorted(input_names(variant))
    assert model.count_params() == params
    import keras

    rng = np.random.default_rng(0)
    x = {"tabular": rng.normal(size=(3, 10)).astype(np.float32),
         "mel": rng.random((3, N_MELS, N_FRAMES)).astype(np.float32), "has_audio": np.ones((3, 1), np.float32)}
    x = {k: x[k] for k in inputs}
    out = {k: v.numpy() for k, v in model(x, training=False).items()}
    assert {k: v.shape for k, v in out.items()} == {"hit": (3, 1), "popularity": (3, 1)}
    # both heads are a sigmoid of one dense unit over the shared head layer, worked out here in NumPy
    head = keras.Model(model.input, model.get_layer("head_drop").output)(x, training=False).numpy()
    for name in ("hit", "popularity"):
        w, b = model.get_layer(name).get_weights()
        np.testing.assert_allclose(out[name], 1 / (1 + np.exp(-(head @ w + b))), rtol=1e-5)
    # every input the variant takes reaches the output
    for name in inputs:
        moved = model(dict(x, **{name: x[name] + 1.0}), training=False)["hit"].numpy()
        assert np.abs(moved - out["hit"]).max() > 1e-6, name


def test_no_popularity_head_and_unknown_variant():
    model = build_model(tabular_width=4, n_mels=N_MELS, n_frames=N_FRAMES, variant="tabular", popularity_head=False,
                        dense_units=8)
    assert list(model.output.keys()) == ["hit"]
    with pytest.raises(ConfigError, match="train.variant must be one of fused, tabular, audio, got 'video'"):
        build_model(tabular_width=4, n_mels=N_MELS, n_frames=N_FRAMES, variant="video")


def test_ensemble_averages_independent_members_and_survives_save_load(tmp_path):
    import keras

    model = build_model(tabular_width=6, n_mels=N_MELS, n_frames=N_FRAMES, variant="fused", conv_filters=[4],
                        dense_units=8, kernel_size=3, members=3)
    single = build_model(tabular_width=6, n_mels=N_MELS, n_frames=N_FRAMES, variant="fused", conv_filters=[4],
                         dense_units=8, kernel_size=3)
    assert model.count_params() == 3 * single.count_params()
    rng = np.random.default_rng(2)
    x = {"tabular": rng.normal(size=(4, 6)).astype(np.float32), "has_audio": np.ones((4, 1), np.float32),
         "mel": rng.random((4, N_MELS, N_FRAMES)).astype(np.float32)}
    out = {k: v.numpy() for k, v in model(x, training=False).items()}
    assert {k: v.shape for k, v in out.items()} == {"hit": (4, 1), "popularity": (4, 1), "member_hit": (4, 3),
                                                    "member_popularity": (4, 3)}
    np.testing.assert_allclose(out["hit"][:, 0], out["member_hit"].mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(out["popularity"][:, 0], out["member_popularity"].mean(axis=1), rtol=1e-6)
    assert np.ptp(out["member_hit"], axis=1).min() > 1e-4          # members are initialised differently
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(loaded(x, training=False)["hit"].numpy(), out["hit"], rtol=1e-6)
    with pytest.raises(ConfigError, match="train.ensemble must be at least 1, got 0"):
        build_model(tabular_width=6, n_mels=N_MELS, n_frames=N_FRAMES, variant="fused", members=0)


def test_audio_gate_zeroes_the_cnn_without_audio():
    model = build_model(tabular_width=6, n_mels=N_MELS, n_frames=N_FRAMES, variant="fused", conv_filters=[4],
                        dense_units=8, kernel_size=3)
    base = {"tabular": np.zeros((2, 6), np.float32), "has_audio": np.zeros((2, 1), np.float32)}
    rng = np.random.default_rng(1)
    a = model(dict(base, mel=rng.random((2, N_MELS, N_FRAMES)).astype(np.float32)), training=False)["hit"]
    b = model(dict(base, mel=np.zeros((2, N_MELS, N_FRAMES), np.float32)), training=False)["hit"]
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-7)


def test_feature_columns_exclude_ids_labels_and_strings(spark):
    examples, _ = synth_frames(spark, 3)
    assert feature_columns(examples) == ["plays_7d", "skip_rate_28d", "danceability", "days_since_release"]
    with pytest.raises(FeatureError, match="no numeric feature columns"):
        compute_stats(examples, [], n_mels=8, n_frames=16)


def test_stats_in_spark_equal_numpy_on_literal_rows(spark):
    rows = [("a", dt.date(2025, 3, 1), "train", None, None, "pop", None, False, 1, 10.0, 1, 1.0, None, 0.5, 10),
            ("b", dt.date(2025, 3, 1), "train", None, None, "rock", None, False, 2, 20.0, 0, 4.0, 0.25, 0.5, 20),
            ("c", dt.date(2025, 3, 1), "train", None, None, "pop", None, True, 3, 30.0, 0, None, 0.75, 0.5, 60),
            ("d", dt.date(2025, 7, 1), "validation", None, None, "jazz", None, False, 4, 40.0, 1, 1e6, 1.0, .1, 5)]
    df = spark.createDataFrame(rows, EXAMPLES)
    feats = feature_columns(df)
    stats = compute_stats(df.where(F.col("split") == "train"), feats, n_mels=8, n_frames=16)
    assert stats.features == feats
    np.testing.assert_allclose(stats.means, [np.mean([1.0, 4.0]), np.mean([.25, .75]), .5, np.mean([10, 20, 60])])
    np.testing.assert_allclose(stats.stds, [np.std([1.0, 4.0]), np.std([.25, .75]), 1.0, np.std([10, 20, 60])])
    assert stats.genres == ["pop", "rock"]          # from the train split only
    assert TabularStats.from_json(stats.to_json()) == stats


def test_skewed_counts_are_log_compressed_in_spark_and_numpy_alike(spark):
    plays = [0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 5000.0]       # a heavy tail: Spark skewness 2.27 > 2
    rows = [(float(p), float(i % 3) - 1.0, float(i)) for i, p in enumerate(plays)]
    df = spark.createDataFrame(rows + [(None, 0.0, 1.0)], "plays double, signed double, flat double")
    assert compute_stats(df, ["plays", "signed", "flat"], n_mels=8, n_frames=16).log1p == []       # off by default
    stats = compute_stats(df, ["plays", "signed", "flat"], n_mels=8, n_frames=16, log1p_min_skew=2.0)
    assert stats.log1p == ["plays"]                  # negative values or low skew keep their scale
    logged = np.log1p(plays)
    np.testing.assert_allclose([stats.means[0], stats.stds[0]], [logged.mean(), logged.std()], rtol=1e-9)
    enc = encode_tabular(pd.DataFrame({"plays": [5000.0, None, -3.0], "signed": [0.0, 0.0, 0.0],
                                       "flat": [1.0, 1.0, 1.0]}), stats)
    np.testing.assert_allclose(enc[:, 0], [(np.log1p(5000.0) - logged.mean()) / logged.std(), 0.0,
                                           (0.0 - logged.mean()) / logged.std()], rtol=1e-6)
    np.testing.assert_array_equal(enc[:, 3], [0.0, 1.0, 0.0])      # NULL is still marked missing
    assert TabularStats.from_json(stats.to_json()).log1p == ["plays"]


def test_rank_gauss_knots_in_spark_and_encoding_match_scikit_learn(spark):
    from scipy.special import ndtri
    from sklearn.preprocessing import QuantileTransformer

    rng = np.random.default_rng(3)
    x = np.round(rng.lognormal(0.0, 2.0, 400), 3)                  # heavy-tailed, like play counts
    b = (rng.random(400) < 0.3).astype(float)                     # binary: most knots repeat
    df = spark.createDataFrame([(float(u), float(v)) for u, v in zip(x, b)] + [(None, 1.0)], "x double, b double")
    stats = compute_stats(df, ["x", "b"], n_mels=8, n_frames=16, log1p_min_skew=2.0, scaling="rank_gauss",
                          n_quantiles=11)
    probs = np.linspace(0, 1, 11)
    # percentile_approx is exact on 400 rows: the smallest value with at least p of the rows at or below it
    np.testing.assert_array_equal(stats.quantiles["x"], np.quantile(x, probs, method="inverted_cdf"))
    np.testing.assert_array_equal(stats.quantiles["b"], np.quantile(b, probs, method="inverted_cdf"))
    assert stats.log1p == []                                      # the quantile map makes log1p redundant
    assert TabularStats.from_json(stats.to_json()) == stats

    probe = np.array([x.min(), 0.3, 1.0, 2.5, 40.0, x.max() * 10, -5.0])
    enc = encode_tabular(pd.DataFrame({"x": [*probe, None], "b": [0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0]}), stats)
    ref = QuantileTransformer(n_quantiles=11, output_distribution="normal").fit(x[:, None])
    ref.quantiles_ = np.asarray(stats.quantiles["x"])[:, None]       # the same knots, scikit-learn's transform
    np.testing.assert_allclose(enc[:7, 0], np.clip(ref.transform(probe[:, None])[:, 0], ndtri(1e-3),
                                                   ndtri(1 - 1e-3)), atol=1e-6)
    assert enc[5, 0] == pytest.approx(3.0902, abs=1e-3) and enc[6, 0] == pytest.approx(-3.0902, abs=1e-3)
    # a repeated value lands in the middle of its probability mass (scikit-learn sends a binary
    # feature's 0 and 1 to its extreme bounds instead)
    knots_b = np.asarray(stats.quantiles["b"])
    for value, row in ((0.0, 0), (1.0, 1)):
        mass = probs[knots_b == value]
        assert enc[row, 1] == pytest.approx(ndtri(0.5 * (mass.min() + mass.max())), abs=1e-6)
    assert list(enc[7, :4]) == [0.0, pytest.approx(enc[1, 1]), 1.0, 0.0]     # NULL: 0 and marked missing
    with pytest.raises(FeatureError,
                       match="train.scaling must be one of standard, rank_gauss, piecewise, got 'minmax'"):
        compute_stats(df, ["x"], n_mels=8, n_frames=16, scaling="minmax")


def test_piecewise_linear_encoding_over_spark_quantile_bins(spark):
    df = spark.createDataFrame([(float(v), float(v % 2)) for v in range(1, 101)] + [(None, 0.0)], "x double, b double")
    stats = compute_stats(df, ["x", "b"], n_mels=8, n_frames=16, scaling="piecewise", n_quantiles=101, bins=4)
    assert stats.bins == 4 and stats.width == 2 * (4 + 1) + 0 + 1           # no genre column: unknown bucket only
    assert stats.quantiles["x"][::25] == [1.0, 25.0, 50.0, 75.0, 100.0]      # bin edges: 1 | 25 | 50 | 75 | 100
    enc = encode_tabular(pd.DataFrame({"x": [-5.0, 1.0, 37.5, 50.0, 90.0, 1e9, None], "b": [0, 1, 1, 0, 0, 1, 1]}),
                         stats)
    np.testing.assert_allclose(enc[:, :4], [[0, 0, 0, 0], [0, 0, 0, 0], [1, 0.5, 0, 0], [1, 1, 0, 0],
                                            [1, 1, 1, 0.6], [1, 1, 1, 1], [0, 0, 0, 0]], atol=1e-9)
    np.testing.assert_allclose(enc[:, 4:8], [[0, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0],
                                             [0, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]])   # binary: one bin, rest 0
    np.testing.assert_array_equal(enc[:, 8], [0, 0, 0, 0, 0, 0, 1])           # x missing in the last row only
    assert TabularStats.from_json(stats.to_json()) == stats


def test_encoding_standardises_and_marks_missing():
    stats = TabularStats(["x", "y"], [2.0, 10.0], [2.0, 5.0], ["pop", "rock"], 8, 16)
    pdf = pd.DataFrame({"x": [4.0, None, np.nan], "y": [10.0, 0.0, None], "genre": ["rock", "jazz", None]})
    enc = encode_tabular(pdf, stats)
    assert enc.dtype == np.float32 and enc.shape == (3, stats.width) == (3, 7)
    np.testing.assert_array_equal(enc, np.array([
        # z(x)  z(y)  miss_x miss_y  pop rock unknown
        [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        [0.0, -2.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0],
    ], np.float32))
    # a column absent from the input is missing everywhere
    np.testing.assert_array_equal(encode_tabular(pdf[["x"]], stats)[:, 3], [1.0, 1.0, 1.0])


def test_mel_arrays_fixed_length_and_has_audio():
    good = bytes(range(6))
    pdf = pd.DataFrame({"mel": [good, None, good, b"\x01\x02"], "status": ["ok", "missing", "silent", "ok"]})
    mels, has = dataset.mel_arrays(pdf, 2, 3)
    assert mels == [good, bytes(6), bytes(6), bytes(6)]
    np.testing.assert_array_equal(has, [1.0, 0.0, 0.0, 0.0])


def test_petastorm_yields_expected_shapes_and_values(spark, cfg):
    examples, spectrograms = synth_frames(spark, 7)
    feats = feature_columns(examples)
    stats = compute_stats(examples.where("split = 'train'"), feats, n_mels=N_MELS, n_frames=N_FRAMES)
    rows = dataset.training_rows(dataset.join_spectrograms(examples.where("cutoff = '2025-03-01'"), spectrograms),
                                 stats, DEFAULT_SPEC)
    expected = {r.track_id: r for r in rows.collect()}
    assert sorted(expected) == [f"t{i:03d}" for i in range(7)]
    assert expected["t003"].has_audio == 0.0 and expected["t003"].mel == bytearray(N_MELS * N_FRAMES)
    assert expected["t001"].has_audio == 1.0
    assert len(expected["t000"].tabular) == stats.width == 2 * 4 + 3 + 1
    conv = dataset.make_converter(spark, cfg, rows, files=2)
    try:
        assert dataset.shard_rows(conv.file_urls, 2) in ([4, 3], [3, 4])
        seen = {}
        with conv.make_tf_dataset(batch_size=7, num_epochs=1, workers_count=1) as ds:
            # Petastorm declares the array column (None, None); the trainer's map fixes the width statically.
            spec = ds.map(lambda b: dataset.to_model_inputs(b, N_MELS, N_FRAMES, spec=DEFAULT_SPEC,
                                                            tabular_width=stats.width)).element_spec
            assert ds.element_spec.tabular.shape.as_list() == [None, None]
            assert spec[0]["tabular"].shape.as_list() == [None, stats.width]
            assert spec[0]["mel"].shape.as_list() == [None, N_MELS, N_FRAMES]
            for batch in ds:
                x, hit, pop = dataset.to_model_inputs(batch, N_MELS, N_FRAMES, spec=DEFAULT_SPEC)
                assert x["mel"].shape[1:] == (N_MELS, N_FRAMES) and x["tabular"].shape[1] == stats.width
                assert x["has_audio"].shape[1] == 1 and hit.shape[1] == 1 and pop.shape[1] == 1
                for i, tid in enumerate(batch.track_id.numpy()):
                    seen[tid.decode()] = (x["mel"][i].numpy(), x["tabular"][i].numpy(), float(hit[i, 0]))
    finally:
        conv.delete()
    assert sorted(seen) == sorted(expected)
    for tid, (mel, tab, hit) in seen.items():
        r = expected[tid]
        want = np.frombuffer(bytes(r.mel), np.uint8).reshape(N_MELS, N_FRAMES).astype(np.float32) / 255
        np.testing.assert_allclose(mel, want, rtol=0, atol=1e-7)
        np.testing.assert_allclose(tab, np.asarray(r.tabular, np.float32), rtol=0, atol=0)
        assert hit == r.is_hit


ALLOCATION_LOOP = """
import ctypes, resource, numpy as np
from hitcast.model.allocator import M_TRIM_THRESHOLD, keep_freed_memory

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(100):
        a = np.ones(1 << 17, dtype=np.float32)   # 512 KiB, written: like a batch tensor
        del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

ctypes.CDLL(None).mallopt(M_TRIM_THRESHOLD, 128 << 10)   # what TensorFlow's generator dataset does
tf_setting = faults()
applied = keep_freed_memory()
faults()
print(tf_setting, applied, faults())
"""


def test_keep_freed_memory_stops_refaulting_batch_sized_blocks():
    """After TensorFlow's mallopt every 512 KiB block is a fresh mmap (128 page faults each); after
    keep_freed_memory the same loop reuses the freed block and faults no page in."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", ALLOCATION_LOOP], capture_output=True, text=True, env=env,
                         check=True).stdout.split()
    tf_setting, applied, after = int(out[0]), out[1], int(out[2])
    assert applied == "True"
    assert tf_setting >= 100 * 100          # ~128 faults per allocation
    assert after <= 10


def test_optimizer_schedules_and_weight_decay():
    import keras

    from hitcast.model.trainloop import make_optimizer

    opt = make_optimizer(0.01, schedule="cosine", total_steps=100)
    assert type(opt) is keras.optimizers.Adam and opt.weight_decay is None      # no decay unless asked
    schedule = opt._learning_rate
    np.testing.assert_allclose([float(schedule(s)) for s in (0, 50, 100)], [0.01, 0.005, 0.0], atol=1e-7)
    constant = make_optimizer(0.01, schedule="constant", total_steps=100, weight_decay=0.05)
    assert type(constant) is keras.optimizers.AdamW and constant.weight_decay == 0.05
    np.testing.assert_allclose(float(constant.learning_rate), 0.01)
    with pytest.raises(ConfigError, match="train.lr_schedule must be constant or cosine, got 'step'"):
        make_optimizer(0.01, schedule="step", total_steps=100)
