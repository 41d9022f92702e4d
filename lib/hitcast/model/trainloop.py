"""One training worker: a MultiWorkerMirroredStrategy custom loop over its own Petastorm shard.

Run as a fresh process by each Spark barrier task (:mod:`hitcast.model.distributed`)::

    python -m hitcast.model.trainloop SPEC.pkl RESULT.pkl      # TF_CONFIG in the environment

A fresh process per run keeps TensorFlow's collective state out of Spark's reused Python workers.
Keras 3 ``fit`` fails under this strategy (keras-team/keras#20585), so the loop is explicit:
``strategy.run(step)`` computes the loss on the local batch scaled by the *global* batch size and
``optimizer.apply_gradients`` all-reduces the gradients, so every worker applies the same update.
Every worker takes the same number of steps per epoch (from the smallest shard), reads an endless
shuffled stream of its shard and never runs dry; the chief (rank 0) logs per-epoch progress,
evaluates on the validation rows after every epoch and saves the weights of the epoch with the best
validation ROC-AUC (``train.restore_best``; the validation split never feeds a gradient). Once the input
stream has started, the worker resets glibc's malloc thresholds that TensorFlow's generator dataset
lowers (:mod:`hitcast.model.allocator`; without that, Petastorm input trained at half the NumPy rate).
"""
from __future__ import annotations

import logging
import os
import pickle
import sys
import time
from typing import Any

import numpy as np

from hitcast.evaluation.metrics import binary_metrics, choose_threshold

log = logging.getLogger("hitcast.model.trainloop")


def _read_all(converter, n_mels: int, n_frames: int, include_audio: bool) -> tuple[dict, np.ndarray]:
    """Every row of ``converter`` (one pass) as NumPy model inputs and hit labels."""
    from hitcast.model.dataset import to_model_inputs

    xs: dict[str, list] = {}
    ys = []
    with converter.make_tf_dataset(batch_size=256, num_epochs=1, workers_count=1) as ds:
        for batch in ds:
            x, hit, _ = to_model_inputs(batch, n_mels, n_frames, include_audio=include_audio)
            for k, v in x.items():
                xs.setdefault(k, []).append(v.numpy())
            ys.append(hit.numpy())
    return {k: np.concatenate(v) for k, v in xs.items()}, (np.concatenate(ys) if ys else np.zeros((0, 1)))


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
    from hitcast.model.architecture import build_model, input_names, weights_checksum
    from hitcast.model.dataset import to_model_inputs
    from hitcast.model.sources import worker_stream

    rank, n = spec["rank"], spec["workers"]
    m = spec["model"]
    variant = m["variant"]
    audio = "mel" in input_names(variant)
    batch, steps, epochs = spec["batch_size"], spec["steps_per_epoch"], spec["epochs"]
    global_batch = batch * n
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    keras.utils.set_random_seed(spec["seed"])
    with strategy.scope():
        model = build_model(**m)
        optimizer = make_optimizer(spec["learning_rate"], schedule=spec.get("lr_schedule", "constant"),
                                   total_steps=steps * epochs, weight_decay=spec.get("weight_decay", 0.0))
        optimizer.build(model.trainable_variables)
    names = input_names(variant)
    heads = set(model.output.keys()) if isinstance(model.output, dict) else {"hit"}
    drop_p = float(spec.get("audio_dropout", 0.0))
    pop_w = float(spec.get("popularity_weight", 0.0))
    rng = tf.random.Generator.from_seed(spec["seed"] * 1000 + rank)

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
        val_x, val_y = _read_all(spec["val_converter"], m["n_mels"], m["n_frames"], audio)
        val_x = {k: val_x[k] for k in names} if len(val_y) else None

    losses, epoch_stats, rates = [], [], []
    best: dict[str, Any] = {"auc": -1.0, "epoch": None, "weights": None}
    with worker_stream(spec, batch_size=batch, rank=rank, workers=n) as ds:
        ds = ds.map(lambda b: to_model_inputs(b, m["n_mels"], m["n_frames"], include_audio=audio,
                                              tabular_width=m["tabular_width"]))
        it = iter(ds)
        first = next(it)   # starts the reader; TensorFlow's generator sets its malloc option here
        if spec.get("keep_freed_memory", True):
            keep_freed_memory()
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            total, preds, labels = 0.0, [], []
            for _ in range(steps):
                x, hit, pop = first if first is not None else next(it)
                first = None
                loss, pred = train_step(x, hit, pop)
                total += float(loss)
                if rank == 0:
                    preds.append(strategy.experimental_local_results(pred)[0].numpy())
                    labels.append(hit.numpy())
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
