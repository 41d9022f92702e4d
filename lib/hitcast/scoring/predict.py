"""The executor side of scoring: a ``mapInArrow`` function that hashes each track's model inputs, skips the
tracks whose hash equals the stored one, and scores (and explains) the rest in one pass.

Per Python worker process the model bundle is loaded once (cached by path, as
``pyspark.ml.functions.predict_batch_udf`` does), and split once into audio encoder + head
(:mod:`hitcast.model.explain`): every score is the head over the audio embedding, which comes from the
encoder when the row brings mel bytes and from ``audio_embeddings`` when an earlier run of the same model
encoded the same audio. Arrow batches (``spark.sql.execution.arrow.maxRecordsPerBatch`` rows) are gathered
up to :data:`CHUNK` rows per model call, so TensorFlow sees batches of a useful size while a worker's memory
stays bounded.

Input columns: ``track_id``, ``scoring_mode``, ``status`` (the audio status), ``source_hash``,
``content_hash`` and ``dsp_version`` (passed through), ``prev_hash`` (the stored ``input_hash`` for this
model version, or NULL), the model's feature columns and ``genre``, and for audio variants ``mel``,
``n_mels``, ``n_frames``, ``mel_hash``, ``embedding``. Output: :data:`SCORED_DDL`; an unchanged track comes
out as a row with ``rescored = false`` and NULL scores (it is counted, never written to ``predictions``);
``embedding`` is set where the encoder ran (to be stored).
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
              "input_hash string, source_hash string, rescored boolean, content_hash string, dsp_version string, "
              "mel_hash string, embedding binary")
_LOADED: dict[str, Any] = {}


def _loaded(path: str) -> tuple[Any, Any]:
    """``(bundle, split model)`` for the model at ``path``, loaded once per Python process."""
    if path not in _LOADED:
        _set_threads()
        from hitcast.model.bundle import load_bundle
        from hitcast.model.explain import split_model

        bundle = load_bundle(path)
        _LOADED[path] = (bundle, split_model(bundle.model, bundle.spec))
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


def mel_digest(mel: bytes) -> bytes:
    """128-bit blake2b of a track's mel bytes: what ``input_hash`` covers of the audio, and what
    ``audio_embeddings.mel_hash`` stores (hex) beside the embedding made from those bytes."""
    return hashlib.blake2b(mel, digest_size=16).digest()


def encode(pdf: pd.DataFrame, bundle: Any) -> tuple[dict[str, Any], list[str]]:
    """The model's inputs for ``pdf`` and a hash of each row's inputs.

    A row of an audio variant brings its audio one of two ways: ``mel`` bytes (``status`` ok), or the
    ``embedding`` and ``mel_hash`` stored by an earlier run of the same model for the same audio
    (:mod:`hitcast.scoring.embeddings`); a row with neither has no audio (``has_audio`` 0).

    Returns
    -------
    (inputs, hashes)
        ``inputs``: per group of ``bundle.spec``: ``tabular`` (n, W) float32; for audio ``has_audio`` (n, 1)
        float32, ``mel`` (n byte strings, None where the row has a stored embedding or no audio), ``embedding``
        (n byte strings or None) and ``mel_hash`` (n 16-byte digests); per ``numeric`` group ``<name>`` (n, 2C)
        float32. ``hashes``: n hex strings (blake2b, 128 bits) over every group's encoded bytes in spec order
        (the tabular bytes, ``has_audio`` and the mel digest, each numeric group's bytes), i.e. over exactly
        what the model sees.
    """
    from hitcast.model.dataset import encode_inputs

    spec = bundle.spec
    n = len(pdf)
    enc = encode_inputs(pdf, spec, bundle.stats)
    x: dict[str, Any] = {}
    parts: list[list[bytes]] = []
    for g in spec.groups:
        if g.kind == "tabular":
            x["tabular"] = enc["tabular"]
            parts.append([row.tobytes() for row in x["tabular"]])
        elif g.kind == "audio":
            mels, has = enc["mel"], enc["has_audio"]
            column = {c: pdf[c].tolist() if c in pdf.columns else [None] * n
                      for c in ("embedding", "mel_hash", "status")}
            none = mel_digest(bytes(bundle.stats.n_mels * bundle.stats.n_frames))
            mel_out, stored, digests = [], [], []
            for i in range(n):
                emb, digest, status = column["embedding"][i], column["mel_hash"][i], column["status"][i]
                if has[i]:
                    mel_out.append(mels[i]), stored.append(None), digests.append(mel_digest(mels[i]))
                elif emb is not None and digest and status == "ok":
                    has[i] = 1.0
                    mel_out.append(None), stored.append(bytes(emb)), digests.append(bytes.fromhex(digest))
                else:
                    mel_out.append(None), stored.append(None), digests.append(none)
            x.update(has_audio=has.reshape(-1, 1), mel=mel_out, embedding=stored, mel_hash=digests)
            parts += [[h.tobytes() for h in x["has_audio"]], digests]
        else:
            x[g.name] = enc[g.name]
            parts.append([row.tobytes() for row in x[g.name]])
    hashes = []
    for row in zip(*parts):
        h = hashlib.blake2b(digest_size=16)
        for piece in row:
            h.update(piece)
        hashes.append(h.hexdigest())
    return x, hashes


def _take(x: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
    return {k: ([v[i] for i in rows] if isinstance(v, list) else v[rows]) for k, v in x.items()}


def embeddings_of(x: dict[str, Any], bundle: Any, split: Any) -> tuple[list[np.ndarray], list[bytes | None]]:
    """Per-member audio embeddings of :func:`encode`'s rows: the encoder's output for rows with ``mel``
    bytes, the stored embedding for the others with audio, zeros without audio (``has_audio`` 0 gates the
    audio branch off, so its embedding does not matter).

    Returns
    -------
    (embeddings, new)
        ``embeddings``: ``split.members`` arrays of shape (n, ``split.embedding_width``) float32; ``new``: n
        byte strings (the row's members' embeddings, (members, width) float32 row-major) where the encoder
        ran, else None.

    Raises
    ------
    ValueError
        When a stored embedding does not have the model's shape.
    """
    from hitcast.model.dataset import mel_input, mel_matrix

    n, width, members = len(x["mel"]), split.embedding_width, split.members
    embs = [np.zeros((n, width), dtype=np.float32) for _ in range(members)]
    new: list[bytes | None] = [None] * n
    run = [i for i, m in enumerate(x["mel"]) if m is not None]
    if run:
        mel = mel_input(mel_matrix([x["mel"][i] for i in run]), bundle.stats.n_mels, bundle.stats.n_frames)
        encoded = split.encode(mel)
        for k, e in enumerate(encoded):
            embs[k][run] = e
        rows = np.stack(encoded, axis=1)            # (len(run), members, width): each row's bytes in one piece
        for j, i in enumerate(run):
            new[i] = rows[j].tobytes()
    for i, stored in enumerate(x["embedding"]):
        if stored is None or x["mel"][i] is not None:
            continue
        if len(stored) != members * width * 4:
            raise ValueError(f"a stored audio embedding has {len(stored)} bytes, not {members * width * 4} "
                             f"({members} x {width} float32) for model {bundle.version}")
        arr = np.frombuffer(stored, dtype=np.float32).reshape(members, width)
        for k in range(members):
            embs[k][i] = arr[k]
    return embs, new


def score_rows(x: dict[str, Any], bundle: Any, *, split: Any, reasons: int
               ) -> tuple[np.ndarray, np.ndarray, list, list[bytes | None]]:
    """Hit probability, popularity score (NaN without that head), the top ``reasons`` of each row, and
    the audio embeddings the encoder computed (:func:`embeddings_of`), through the split model (audio
    encoder, then head).

    Returns
    -------
    (hit (n,), popularity (n,), reasons: n lists of ``{"input", "contribution"}`` dicts (empty when 0),
    new embeddings: n byte strings or None)
    """
    from hitcast.model.explain import contributions, top_reasons

    spec = bundle.spec
    feed = {k: x[k] for k in spec.input_names() if k != "mel"}
    n = len(next(iter(feed.values())))
    embs, new = embeddings_of(x, bundle, split) if spec.uses_audio else (None, [None] * n)
    if reasons:
        out, labels, contrib = contributions(split, feed, stats=bundle.stats, spec=spec, embeddings=embs)
        why = top_reasons(labels, contrib, reasons)
    else:
        head = split.run_head({**feed, **{f"emb_{k}": e for k, e in enumerate(embs or [])}})
        out, why = {k: v.reshape(-1) for k, v in head.items()}, [[] for _ in range(n)]
    hit = np.clip(out["hit"].astype(np.float64), 0.0, 1.0)
    pop = 100.0 * out["popularity"].astype(np.float64) if "popularity" in out else np.full(n, np.nan)
    return hit, pop, why, new


def _column(pdf: pd.DataFrame, name: str) -> list:
    return pdf[name].tolist() if name in pdf.columns else [None] * len(pdf)


def _score_frame(pdf: pd.DataFrame, bundle: Any, split: Any, *, reasons: int, full: bool) -> pa.RecordBatch:
    x, hashes = encode(pdf, bundle)
    prev = _column(pdf, "prev_hash")
    changed = np.array([full or h != p for h, p in zip(hashes, prev)], dtype=bool)
    n = len(pdf)
    hit, pop = np.full(n, np.nan), np.full(n, np.nan)
    why: list = [None] * n
    new: list[bytes | None] = [None] * n
    rows = np.flatnonzero(changed)
    if len(rows):
        h, p, w, e = score_rows(x if len(rows) == n else _take(x, rows), bundle, split=split, reasons=reasons)
        hit[rows], pop[rows] = h, p
        for i, r, emb in zip(rows, w, e):
            why[i], new[i] = r, emb
    digests = [d.hex() for d in x["mel_hash"]] if "mel_hash" in x else [None] * n
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
        "content_hash": pa.array(_column(pdf, "content_hash"), pa.string()),
        "dsp_version": pa.array(_column(pdf, "dsp_version"), pa.string()),
        "mel_hash": pa.array(digests, pa.string()),
        "embedding": pa.array(new, pa.binary()),
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
