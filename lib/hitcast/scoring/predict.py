"""The executor side of scoring: a ``mapInArrow`` function that hashes each track's model inputs, skips the
tracks whose hash equals the stored one, and scores (and explains) the rest in one pass.

Per Python worker process the model bundle is loaded once (cached by path, as
``pyspark.ml.functions.predict_batch_udf`` does), and split once into audio encoder + head for the reasons
(:mod:`hitcast.model.explain`). Arrow batches (``spark.sql.execution.arrow.maxRecordsPerBatch`` rows) are
gathered up to :data:`CHUNK` rows per model call, so TensorFlow sees batches of a useful size while a
worker's memory stays bounded.

Input columns: ``track_id``, ``scoring_mode``, ``status`` (the audio status), ``source_hash`` (passed
through), ``prev_hash`` (the stored ``input_hash`` for this model version, or NULL), the model's feature
columns and ``genre``, and for audio variants ``mel``, ``n_mels``, ``n_frames``. Output: :data:`SCORED_DDL`; an unchanged track comes out as a
row with ``rescored = false`` and NULL scores (it is counted, never written to ``predictions``).
"""
from __future__ import annotations

import hashlib
import logging
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

log = logging.getLogger(__name__)

#: Rows per model call.
CHUNK = 512
SCORED_DDL = ("track_id string, hit_probability double, popularity_score double, predicted_hit boolean, "
              "mode string, audio_status string, reasons array<struct<input:string,contribution:double>>, "
              "input_hash string, source_hash string, rescored boolean")
_LOADED: dict[str, Any] = {}


def _loaded(path: str) -> tuple[Any, Any]:
    """``(bundle, split model)`` for the model at ``path``, loaded once per Python process."""
    if path not in _LOADED:
        _set_threads()
        from hitcast.model.architecture import input_names
        from hitcast.model.bundle import load_bundle
        from hitcast.model.explain import split_model

        bundle = load_bundle(path)
        _LOADED[path] = (bundle, split_model(bundle.model, input_names(bundle.variant)))
        log.info("loaded model bundle %s in worker", path)
    return _LOADED[path]


def _set_threads() -> None:
    """One TensorFlow thread pool per task's cores (``spark.task.cpus``): Spark already runs one Python
    worker per core, and TensorFlow's default (every core in every worker) oversubscribes them."""
    import tensorflow as tf
    from pyspark import TaskContext

    ctx = TaskContext.get()
    if ctx is None:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(ctx.cpus()))
        tf.config.threading.set_inter_op_parallelism_threads(int(ctx.cpus()))
    except RuntimeError:  # TensorFlow already initialised in this worker: keep its pools
        log.debug("TensorFlow thread pools already set in this worker")


def encode(pdf: pd.DataFrame, bundle: Any) -> tuple[dict[str, Any], list[str]]:
    """The model's inputs for ``pdf`` and a hash of each row's inputs.

    Returns
    -------
    (inputs, hashes)
        ``inputs``: ``tabular`` (n, W) float32, and for audio variants ``mel`` as a list of n byte strings
        and ``has_audio`` (n, 1) float32; ``hashes``: n hex strings (blake2b, 128 bits) over exactly those
        bytes.
    """
    from hitcast.model.architecture import input_names
    from hitcast.model.dataset import mel_arrays
    from hitcast.model.tabular import encode_tabular

    names = input_names(bundle.variant)
    x: dict[str, Any] = {}
    parts: list[list[bytes]] = []
    if "tabular" in names:
        x["tabular"] = encode_tabular(pdf, bundle.stats)
        parts.append([row.tobytes() for row in x["tabular"]])
    if "mel" in names:
        mels, has = mel_arrays(pdf, bundle.stats.n_mels, bundle.stats.n_frames)
        x["mel"], x["has_audio"] = mels, has.reshape(-1, 1)
        parts += [[h.tobytes() for h in x["has_audio"]], mels]
    hashes = []
    for row in zip(*parts):
        h = hashlib.blake2b(digest_size=16)
        for piece in row:
            h.update(piece)
        hashes.append(h.hexdigest())
    return x, hashes


def _take(x: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
    return {k: ([v[i] for i in rows] if isinstance(v, list) else v[rows]) for k, v in x.items()}


def score_rows(x: dict[str, Any], bundle: Any, *, split: Any, reasons: int) -> tuple[np.ndarray, np.ndarray, list]:
    """Hit probability, popularity score (NaN without that head) and the top ``reasons`` of each row.

    Returns
    -------
    (hit (n,), popularity (n,), reasons: n lists of ``{"input", "contribution"}`` dicts, empty when 0)
    """
    from hitcast.model.architecture import input_names
    from hitcast.model.dataset import mel_input
    from hitcast.model.explain import contributions, top_reasons

    n = len(next(iter(x.values())))
    feed = dict(x)
    if "mel" in feed:
        feed["mel"] = mel_input(feed["mel"], bundle.stats.n_mels, bundle.stats.n_frames).numpy()
    if reasons:
        out, labels, contrib = contributions(split, feed, stats=bundle.stats, names=input_names(bundle.variant))
        why = top_reasons(labels, contrib, reasons)
    else:
        out, why = {k: v.reshape(-1) for k, v in bundle.call(feed).items()}, [[] for _ in range(n)]
    hit = np.clip(out["hit"].astype(np.float64), 0.0, 1.0)
    pop = 100.0 * out["popularity"].astype(np.float64) if "popularity" in out else np.full(n, np.nan)
    return hit, pop, why


def _score_frame(pdf: pd.DataFrame, bundle: Any, split: Any, *, reasons: int, full: bool) -> pa.RecordBatch:
    x, hashes = encode(pdf, bundle)
    prev = pdf["prev_hash"].tolist() if "prev_hash" in pdf.columns else [None] * len(pdf)
    changed = np.array([full or h != p for h, p in zip(hashes, prev)], dtype=bool)
    n = len(pdf)
    hit, pop = np.full(n, np.nan), np.full(n, np.nan)
    why: list = [None] * n
    rows = np.flatnonzero(changed)
    if len(rows):
        h, p, w = score_rows(_take(x, rows), bundle, split=split, reasons=reasons)
        hit[rows], pop[rows] = h, p
        for i, r in zip(rows, w):
            why[i] = r
    return pa.RecordBatch.from_pydict({
        "track_id": pa.array(pdf["track_id"].astype(str).tolist(), pa.string()),
        "hit_probability": pa.array(hit, from_pandas=True),
        "popularity_score": pa.array(pop, from_pandas=True),
        "predicted_hit": pa.array([bool(v >= bundle.threshold) if c else None for v, c in zip(hit, changed)],
                                  pa.bool_()),
        "mode": pa.array(pdf["scoring_mode"].tolist(), pa.string()),
        "audio_status": pa.array(pdf["status"].tolist(), pa.string()),
        "reasons": pa.array(why, pa.list_(pa.struct([("input", pa.string()), ("contribution", pa.float64())]))),
        "input_hash": pa.array(hashes, pa.string()),
        "source_hash": pa.array(pdf["source_hash"].tolist(), pa.string()),
        "rescored": pa.array(changed.tolist(), pa.bool_()),
    })


def predict_partitions(model_path: str, *, reasons: int, full: bool):
    """A ``mapInArrow`` function: scoring inputs -> :data:`SCORED_DDL` batches (see the module docstring).

    Parameters
    ----------
    reasons
        Top inputs to explain per track (0: no reasons, the cheaper plain forward pass).
    full
        Score every row, whatever its stored hash.
    """
    def predict(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        bundle, split = _loaded(model_path)
        pending: list[pa.RecordBatch] = []
        size = 0
        for batch in batches:
            pending.append(batch)
            size += batch.num_rows
            if size >= CHUNK:
                yield _score_frame(pa.Table.from_batches(pending).to_pandas(), bundle, split, reasons=reasons,
                                   full=full)
                pending, size = [], 0
        if size:
            yield _score_frame(pa.Table.from_batches(pending).to_pandas(), bundle, split, reasons=reasons, full=full)

    return predict
