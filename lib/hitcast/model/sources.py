"""A training worker's endless input stream: its Petastorm shard, or (for the benchmark) an ``.npz``.

Both yield batches with the same fields (``tabular``, ``mel`` as bytes, ``has_audio``, ``is_hit``,
``popularity``), so :func:`hitcast.model.dataset.to_model_inputs` maps either onto the model's inputs;
``bench/bench_training.py`` compares them to measure what Petastorm's reading costs.
"""
from __future__ import annotations

import contextlib
from typing import Any

import numpy as np


def worker_stream(spec: dict[str, Any], *, batch_size: int, rank: int, workers: int):
    """The stream the spec names: ``spec["numpy_path"]`` (an ``.npz``) if set, else the Petastorm converter
    ``spec["converter"]`` sharded ``rank`` of ``workers``; shuffled, repeated, batched. A context manager."""
    shuffle = spec.get("shuffle_buffer", 512)
    if spec.get("numpy_path"):
        return npz_stream(spec["numpy_path"], batch=batch_size, shuffle=shuffle, rank=rank, n=workers)
    return spec["converter"].make_tf_dataset(batch_size=batch_size, num_epochs=None,
                                             workers_count=spec.get("reader_workers", 1),
                                             shuffling_queue_capacity=shuffle, cur_shard=rank, shard_count=workers)


@contextlib.contextmanager
def npz_stream(path: str, *, batch: int, shuffle: int, rank: int, n: int):
    """The in-memory counterpart of the Petastorm stream (for the benchmark): an ``.npz`` of the same
    columns (``mel`` as bytes), sharded by row, shuffled, repeated and batched like Petastorm's."""
    import collections

    import tensorflow as tf

    with np.load(path, allow_pickle=True) as data:
        cols = {k: data[k][rank::n] for k in data.files}
    Batch = collections.namedtuple("Batch", sorted(cols))
    ds = tf.data.Dataset.from_tensor_slices(Batch(**cols)).shuffle(shuffle, seed=rank).repeat().batch(batch)
    yield ds.prefetch(tf.data.AUTOTUNE)
