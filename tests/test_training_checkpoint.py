"""Per-epoch checkpoints and resume, in-process on local[2] (no cluster).

Two barrier workers train the same inputs twice: once straight through 4 epochs, once stopped after epoch 2
(every worker leaves once the chief's checkpoint of epoch 2 exists: ``stop_after_epoch``, a fault injection)
and then run again, which resumes from that checkpoint. The resumed run must end with the same weights, bit
for bit, as the straight one. ``train.reader_workers=1``: with more Petastorm reader threads the order of the
row groups is a race (see :mod:`hitcast.model.trainloop`).
"""
from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

from helpers import TINY_TRAIN, make_config, synth_frames
from hitcast.model import checkpoints, store
from hitcast.model.distributed import TrainingError
from hitcast.model.trainloop import epoch_seed
from hitcast.model.training import train_model
from hitcast.tables import fingerprint

SETTINGS = [*TINY_TRAIN, "train.reader_workers=1", "train.dropout=0.2"]   # dropout: seed-generator state too


def _inputs(spark):
    examples, spectrograms = synth_frames(spark, 40)
    inputs = {"training_examples": {"fingerprint": fingerprint(examples)},
              "spectrograms": {"fingerprint": fingerprint(spectrograms, ["computed_at"])}}
    return examples, spectrograms, inputs


def _saved_checksum(path) -> str:
    import keras

    from hitcast.model.architecture import weights_checksum

    return weights_checksum(keras.saving.load_model(path / store.MODEL_FILE, compile=False))


def _without_rates(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k != "examples_per_s"} for h in history]


@pytest.fixture(scope="module")
def straight(spark, tmp_path_factory):
    cfg = make_config(tmp_path_factory.mktemp("straight"), *SETTINGS)
    examples, spectrograms, inputs = _inputs(spark)
    t0 = time.perf_counter()
    out = train_model(spark, cfg, examples, spectrograms=spectrograms, inputs=inputs)
    print(f"straight 4 epochs: {time.perf_counter() - t0:.0f} s, checksum {out.metrics['checksum'][:16]}")
    return out


def test_a_stopped_run_resumes_from_its_last_checkpoint_and_equals_a_straight_run(spark, tmp_path, straight):
    cfg = make_config(tmp_path, *SETTINGS)
    examples, spectrograms, inputs = _inputs(spark)
    with pytest.raises(TrainingError) as failed:
        train_model(spark, cfg, examples, spectrograms=spectrograms, inputs=inputs,
                    spec_overrides={"stop_after_epoch": 2})
    root = store.version_dir(cfg, straight.version) / checkpoints.CHECKPOINTS
    message = str(failed.value)
    assert message.startswith(f"training of {straight.version} failed: ")
    assert re.search(r"training worker [01] exited with code 1", message), message
    assert message.endswith(f"the last checkpoint holds epoch 2 at {root / 'epoch-0002'}; "
                            "re-running the same command resumes from it")
    assert sorted(p.name for p in root.iterdir()) == ["epoch-0002"]          # only the last one is kept
    state = json.loads((root / "epoch-0002" / "state.json").read_text())
    assert state["epoch"] == 2 and len(state["losses"]) == 2
    assert _without_rates(state["history"]) == _without_rates(straight.metrics["history"][:2])
    assert not store.version_complete(store.version_dir(cfg, straight.version))

    resumed = train_model(spark, cfg, examples, spectrograms=spectrograms, inputs=inputs)
    m, s = resumed.metrics, straight.metrics
    print(f"resumed checksum {m['checksum'][:16]}, straight {s['checksum'][:16]}")
    assert (resumed.version, resumed.skipped, m["resumed_from_epoch"]) == (straight.version, False, 2)
    assert m["worker_checksums"] == s["worker_checksums"] == [s["checksum"]] * 2
    assert m["losses"] == s["losses"]
    assert _without_rates(m["history"]) == _without_rates(s["history"])
    assert (m["best_epoch"], m["threshold"]) == (s["best_epoch"], s["threshold"])
    assert _saved_checksum(resumed.path) == _saved_checksum(straight.path)
    assert not root.exists()                                                    # deleted once registered


def test_checkpoint_round_trip_keeps_only_the_last_and_refuses_another_spec(tmp_path):
    rng = np.random.default_rng(0)
    model_vars = [rng.normal(size=(3, 4)).astype(np.float32), np.array([7, 9], dtype=np.int64)]
    opt_vars = [np.array(10, dtype=np.int64), rng.normal(size=(3, 4)).astype(np.float32)]
    state = {"epoch": 1, "losses": [0.7], "history": [{"epoch": 1, "val_auc": float("nan")}], "rates": [5.0],
             "best_auc": -1.0, "best_epoch": None, "fingerprint": "abc"}
    checkpoints.write(tmp_path, 1, model_vars=model_vars, optimizer_vars=opt_vars, best_weights=None, state=state)
    (tmp_path / ".epoch-0002.tmp-1").mkdir()                        # a writer that died half way
    second = checkpoints.write(tmp_path, 2, model_vars=[v + 1 for v in model_vars], optimizer_vars=opt_vars,
                               best_weights=model_vars[:1], state=dict(state, epoch=2, best_epoch=2, best_auc=0.8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0002"]
    assert checkpoints.latest(tmp_path, "abc") == (2, second)
    assert checkpoints.latest(tmp_path, "other") is None
    assert checkpoints.latest(tmp_path / "none", "abc") is None
    back = checkpoints.read(second)
    assert (back["epoch"], back["best_epoch"], back["best_auc"]) == (2, 2, 0.8)
    for got, want in zip(back["model_vars"], model_vars, strict=True):
        np.testing.assert_array_equal(got, want + 1)
        assert got.dtype == want.dtype
    np.testing.assert_array_equal(back["optimizer_vars"][1], opt_vars[1])
    np.testing.assert_array_equal(back["best_weights"][0], model_vars[0])


def test_fingerprint_ignores_paths_and_converters_but_not_settings():
    spec = {"epochs": 4, "seed": 7, "model": {"dropout": 0.2}, "workers": 2, "save_path": "/a", "converter": object()}
    same = dict(spec, save_path="/b", converter=object(), checkpoint_dir="/c", stop_after_epoch=2, reader_workers=4)
    assert checkpoints.spec_fingerprint(spec) == checkpoints.spec_fingerprint(same)
    assert checkpoints.spec_fingerprint(spec) != checkpoints.spec_fingerprint(dict(spec, workers=3))
    assert checkpoints.spec_fingerprint(spec) != checkpoints.spec_fingerprint(dict(spec, model={"dropout": 0.1}))


def test_epoch_seeds_differ_by_epoch_and_rank():
    seeds = {epoch_seed(7, e, r) for e in range(1, 50) for r in range(4)}
    assert len(seeds) == 49 * 4
    # two ranks of one epoch read their shards in different orders, and a rank's order changes by epoch
    order = lambda e, r: np.random.default_rng(epoch_seed(7, e, r)).permutation(50).tolist()   # noqa: E731
    assert order(1, 0) != order(1, 1) and order(1, 0) != order(2, 0)
    assert epoch_seed(7, 3, 1) == epoch_seed(7, 3, 1) != epoch_seed(8, 3, 1)
