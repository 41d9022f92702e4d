"""One training worker: a MultiWorkerMirroredStrategy custom loop over its own Petastorm shard.

Run as a fresh process by each Spark barrier task (:mod:`hitcast.model.distributed`)::

    python -m hitcast.model.trainloop SPEC.pkl RESULT.pkl      # TF_CONFIG in the environment

A fresh process per run keeps TensorFlow's collective state out of Spark's reused Python workers.
Keras 3 ``fit`` fails under this strategy (keras-team/keras#20585), so the loop is explicit:
``strategy.run(step)`` computes the loss on the local batch scaled by the *global* batch size and
``optimizer.apply_gradients`` all-reduces the gradients, so every worker applies the same update.
Every worker takes the same number of steps per epoch (from the smallest shard), reads its shard once
per epoch and never runs dry; the chief (rank 0) logs per-epoch progress,
evaluates on the validation rows after every epoch and saves the weights of the epoch with the best
validation ROC-AUC (``train.restore_best``; the validation split never feeds a gradient). Once the input
stream has started, the worker resets glibc's malloc thresholds that TensorFlow's generator dataset
lowers (:mod:`hitcast.model.allocator`; without that, Petastorm input trained at half the NumPy rate).

Each epoch reads its shard once from a fresh stream (:func:`epoch_stream`) whose order is a function of
(``seed``, epoch, rank) only, and the audio-dropout generator is re-seeded the same way; so the chief's
per-epoch checkpoint (:mod:`hitcast.model.checkpoints`: model and optimizer variables, history, best epoch)
is all a resumed run (``spec["resume_from"]``) needs to continue bit for bit as if it had not stopped.
That holds with ``train.reader_workers: 1``: with more reader threads Petastorm delivers the row groups in
the order the threads finish them, a race.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pickle
import sys
import time
from typing import Any, Iterator

import numpy as np

from hitcast.metrics import binary_metrics, choose_threshold
from hitcast.model import checkpoints

log = logging.getLogger("hitcast.model.trainloop")


def _read_all(converter, n_mels: int, n_frames: int, spec) -> tuple[dict, np.ndarray]:
    """Every row of ``converter`` (one pass) as NumPy model inputs and hit labels."""
    from hitcast.model.dataset import to_model_inputs

    xs: dict[str, list] = {}
    ys = []
    with converter.make_tf_dataset(batch_size=256, num_epochs=1, workers_count=1) as ds:
        for batch in ds:
            x, hit, _ = to_model_inputs(batch, n_mels, n_frames, spec=spec)
            for k, v in x.items():
                xs.setdefault(k, []).append(v.numpy())
            ys.append(hit.numpy())
    return {k: np.concatenate(v) for k, v in xs.items()}, (np.concatenate(ys) if ys else np.zeros((0, 1)))


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of worker ``rank``'s data order and audio dropout in ``epoch`` (in [0, 2**31 - 1))."""
    return (seed * 1_000_003 + epoch * 10_007 + rank) % (2**31 - 1)


@contextlib.contextmanager
def epoch_stream(spec: dict[str, Any], *, epoch: int, batch_size: int, rank: int, workers: int) -> Iterator[Any]:
    """One pass over worker ``rank``'s shard in an order set by :func:`epoch_seed`: Petastorm reads the row
    groups in file order without shuffling, then a ``shuffle_buffer``-row buffer seeded with the epoch's
    seed mixes them; full batches of ``batch_size`` rows. ``spec["numpy_path"]`` (the benchmark's ``.npz``)
    is sharded by row instead. A context manager yielding a ``tf.data.Dataset`` of Petastorm-like batches."""
    import collections

    import tensorflow as tf

    seed = epoch_seed(spec["seed"], epoch, rank)
    buffer = max(1, int(spec.get("shuffle_buffer", 512)))
    if spec.get("numpy_path"):
        with np.load(spec["numpy_path"], allow_pickle=True) as data:
            cols = {k: data[k][rank::workers] for k in data.files}
        Batch = collections.namedtuple("Batch", sorted(cols))
        ds = tf.data.Dataset.from_tensor_slices(Batch(**cols))
        yield ds.shuffle(buffer, seed=seed).batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
        return
    with spec["converter"].make_tf_dataset(batch_size=batch_size, num_epochs=1,
                                           workers_count=spec.get("reader_workers", 1), shuffling_queue_capacity=0,
                                           shuffle_row_groups=False, cur_shard=rank, shard_count=workers) as ds:
        yield (ds.unbatch().shuffle(buffer, seed=seed).batch(batch_size, drop_remainder=True)
               .prefetch(tf.data.AUTOTUNE))


def make_optimizer(learning_rate: float, *, schedule: str, total_steps: int, weight_decay: float = 0.0):
    """Adam (AdamW with ``weight_decay`` > 0) at a ``constant`` learning rate or one that follows a
    ``cosine`` from ``learning_rate`` down to zero over ``total_steps`` updates."""
    import keras

    if schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(learning_rate, max(1, total_steps))
    elif schedule == "constant":
        lr = learning_rate
    else:
        from hitcast.errors import ConfigError

        raise ConfigError(f"train.lr_schedule must be constant or cosine, got {schedule!r}")
    if weight_decay > 0:
        return keras.optimizers.AdamW(lr, weight_decay=weight_decay)
    return keras.optimizers.Adam(lr)


def train(spec: dict[str, Any]) -> dict[str, Any]:
    """Train on this worker's shard; see the module docstring. ``spec`` keys are set by
    :func:`hitcast.model.distributed.run_barrier_training`.

    Returns
    -------
    dict
        ``rank``, ``checksum`` (sha256 of the final weights, before the chief restores its best epoch),
        ``losses`` (global mean loss per epoch), ``epochs`` (chief: per-epoch metrics, with validation rows
        ``val_auc``, ``val_f1`` at 0.5 and ``val_threshold``, the F1-maximising threshold), ``best_epoch``
        (chief: the epoch of best validation ROC-AUC, whose weights it saves; ``None`` without validation
        rows or with ``restore_best`` off), ``threshold`` (chief: ``val_threshold`` of the saved epoch,
        ``None`` without validation rows), ``examples_per_s``, ``steps_per_epoch``.
    """
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    import keras

    from hitcast.model.allocator import keep_freed_memory
    from hitcast.model.architecture import build_model, weights_checksum
    from hitcast.model.dataset import to_model_inputs
    from hitcast.model.spec import ModelSpec

    rank, n = spec["rank"], spec["workers"]
    m = spec["model"]
    inputs_spec = ModelSpec.from_dict(m["spec"]).for_variant(m["variant"])
    audio = inputs_spec.uses_audio
    batch, steps, epochs = spec["batch_size"], spec["steps_per_epoch"], spec["epochs"]
    global_batch = batch * n
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    keras.utils.set_random_seed(spec["seed"])
    with strategy.scope():
        model = build_model(**m)
        optimizer = make_optimizer(spec["learning_rate"], schedule=spec.get("lr_schedule", "constant"),
                                   total_steps=steps * epochs, weight_decay=spec.get("weight_decay", 0.0))
        optimizer.build(model.trainable_variables)
    names = inputs_spec.input_names()
    heads = set(model.output.keys()) if isinstance(model.output, dict) else {"hit"}
    drop_p = float(spec.get("audio_dropout", 0.0))
    pop_w = float(spec.get("popularity_weight", 0.0))
    rng = tf.random.Generator.from_seed(epoch_seed(spec["seed"], 0, rank))   # re-seeded every epoch

    def step_fn(x, hit, pop):
        x = {k: x[k] for k in names}
        if audio and drop_p > 0:
            keep = tf.cast(rng.uniform(tf.shape(x["has_audio"])) >= drop_p, tf.float32)
            x["has_audio"] = x["has_audio"] * keep
            x["mel"] = x["mel"] * keep[:, :, None]
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            # An ensemble fits each member on its own loss (mean over members): independent members.
            p_hit = out.get("member_hit", out["hit"])                        # (batch, K)
            per_ex = keras.losses.binary_crossentropy(hit * tf.ones_like(p_hit), p_hit)
            if "popularity" in heads and pop_w > 0:
                p_pop = out.get("member_popularity", out["popularity"])      # (batch, K)
                known = tf.math.is_finite(pop)
                err = tf.where(known, p_pop - tf.where(known, pop, 0.0) / 100.0, 0.0)
                per_ex = per_ex + pop_w * tf.reduce_mean(tf.square(err), axis=-1)
            loss = tf.nn.compute_average_loss(per_ex, global_batch_size=global_batch)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss, out["hit"]

    @tf.function
    def train_step(x, hit, pop):
        loss, pred = strategy.run(step_fn, args=(x, hit, pop))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None), pred

    @tf.function
    def infer(x):
        return model(x, training=False)["hit"]

    val_x, val_y = None, None
    if rank == 0 and spec.get("val_converter") is not None:
        val_x, val_y = _read_all(spec["val_converter"], m["n_mels"], m["n_frames"], inputs_spec)
        val_x = {k: val_x[k] for k in names} if len(val_y) else None

    losses, epoch_stats, rates = [], [], []
    best: dict[str, Any] = {"auc": -1.0, "epoch": None, "weights": None}
    start = 1
    if spec.get("resume_from"):
        ck = checkpoints.read(spec["resume_from"])
        for var, value in zip(model.variables, ck["model_vars"], strict=True):
            var.assign(value)
        for var, value in zip(optimizer.variables, ck["optimizer_vars"], strict=True):
            var.assign(value)
        losses, epoch_stats, rates = list(ck["losses"]), list(ck["history"]), list(ck["rates"])
        if rank == 0:
            best.update(auc=ck["best_auc"], epoch=ck["best_epoch"], weights=ck["best_weights"])
        start = int(ck["epoch"]) + 1
        log.info("worker %d resumes at epoch %d/%d from %s", rank, start, epochs, spec["resume_from"])
    for epoch in range(start, epochs + 1):
        t0 = time.perf_counter()
        total, preds, labels, taken = 0.0, [], [], 0
        rng.reset_from_seed(epoch_seed(spec["seed"], epoch, rank))
        with epoch_stream(spec, epoch=epoch, batch_size=batch, rank=rank, workers=n) as ds:
            ds = ds.map(lambda b: to_model_inputs(b, m["n_mels"], m["n_frames"], spec=inputs_spec,
                                                  tabular_width=m["tabular_width"]))
            for x, hit, pop in ds.take(steps):
                if taken == 0 and spec.get("keep_freed_memory", True):
                    keep_freed_memory()   # after the stream's generator started (it sets its malloc option)
                loss, pred = train_step(x, hit, pop)
                total += float(loss)
                taken += 1
                if rank == 0:
                    preds.append(strategy.experimental_local_results(pred)[0].numpy())
                    labels.append(hit.numpy())
        if taken != steps:
            raise RuntimeError(f"worker {rank}'s shard gave {taken} batches in epoch {epoch}, not {steps}")
        dt = time.perf_counter() - t0
        losses.append(total / max(steps, 1))
        rates.append(steps * global_batch / dt if dt > 0 else float("nan"))
        if rank == 0:
            stats = {"epoch": epoch, "loss": losses[-1], "examples_per_s": rates[-1]}
            tr = binary_metrics(np.concatenate(labels), np.concatenate(preds))
            stats["train_auc"] = tr["roc_auc"]
            if val_x is not None:
                vp = np.concatenate([infer({k: v[i:i + 512] for k, v in val_x.items()}).numpy()
                                     for i in range(0, len(val_y), 512)])
                va = binary_metrics(val_y, vp)
                stats["val_auc"], stats["val_f1"] = va["roc_auc"], va["f1"]
                stats["val_threshold"] = choose_threshold(val_y, vp, spec.get("threshold", "f1_max"))
                if spec.get("restore_best", True) and np.isfinite(va["roc_auc"]) and va["roc_auc"] > best["auc"]:
                    best.update(auc=va["roc_auc"], epoch=epoch, weights=model.get_weights())
            epoch_stats.append(stats)
            log.info("epoch %d/%d: loss %.4f, train AUC %.3f, val AUC %s, val F1 %s, %.0f examples/s",
                     epoch, epochs, stats["loss"], stats["train_auc"],
                     "%.3f" % stats["val_auc"] if "val_auc" in stats else "-",
                     "%.3f" % stats["val_f1"] if "val_f1" in stats else "-", stats["examples_per_s"])
            if spec.get("checkpoint_dir"):
                _write_checkpoint(spec, epoch, model, optimizer, best, losses, epoch_stats, rates)
        if spec.get("stop_after_epoch") == epoch and epoch < epochs:
            _stop_for_test(spec, epoch, rank)
    checksum = weights_checksum(model)
    if best["weights"] is not None and best["epoch"] != epochs:
        model.set_weights(best["weights"])
        log.info("chief keeps the weights of epoch %d (best validation ROC-AUC %.3f)", best["epoch"], best["auc"])
    if rank == 0 and spec.get("save_path"):
        model.save(spec["save_path"])
        log.info("chief saved the model to %s", spec["save_path"])
    kept = next((e for e in epoch_stats if e["epoch"] == best["epoch"]), epoch_stats[-1] if epoch_stats else {})
    return {"rank": rank, "checksum": checksum, "losses": losses, "epochs": epoch_stats, "best_epoch": best["epoch"],
            "threshold": kept.get("val_threshold"),
            "examples_per_s": float(np.median(rates)) if rates else float("nan"), "steps_per_epoch": steps}


def _write_checkpoint(spec: dict[str, Any], epoch: int, model, optimizer, best: dict[str, Any], losses: list,
                      history: list, rates: list) -> None:
    """The chief's checkpoint of ``epoch`` (:func:`hitcast.model.checkpoints.write`)."""
    t0 = time.perf_counter()
    path = checkpoints.write(
        spec["checkpoint_dir"], epoch, model_vars=[v.numpy() for v in model.variables],
        optimizer_vars=[v.numpy() for v in optimizer.variables], best_weights=best["weights"],
        state={"epoch": epoch, "losses": losses, "history": history, "rates": rates, "best_auc": best["auc"],
               "best_epoch": best["epoch"], "fingerprint": spec.get("fingerprint")})
    log.info("chief wrote the checkpoint of epoch %d to %s in %.2f s", epoch, path, time.perf_counter() - t0)


def _stop_for_test(spec: dict[str, Any], epoch: int, rank: int) -> None:
    """Fault injection (``spec["stop_after_epoch"]``, tests only): every worker leaves after ``epoch``, the
    others once the chief's checkpoint of it exists, so that the run fails with that checkpoint written."""
    deadline = time.monotonic() + 300
    while rank != 0 and not (checkpoints.epoch_dir(spec["checkpoint_dir"], epoch) / "state.json").is_file():
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    raise RuntimeError(f"worker {rank} stopped after epoch {epoch} (stop_after_epoch, a test's fault injection)")


def main(argv: list[str]) -> int:
    spec_path, result_path = argv[1], argv[2]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("petastorm", "absl", "tensorflow"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    import warnings

    for category in (FutureWarning, UnicodeWarning, UserWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    with open(spec_path, "rb") as fh:
        spec = pickle.load(fh)
    result = train(spec)
    with open(result_path + ".tmp", "wb") as fh:
        pickle.dump(result, fh)
    os.replace(result_path + ".tmp", result_path)
    sys.stderr.flush()
    return 0


if __name__ == "__main__":
    try:
        code = main(sys.argv)
    except BaseException:  # noqa: BLE001 - report, then leave without TF teardown
        log.exception("training worker failed")
        code = 1
    sys.stderr.flush()
    os._exit(code)   # skip TF's collective teardown, which can wait on peers that already left
