"""glibc allocator settings for a training worker.

TensorFlow's ``GeneratorDataset`` (under ``tf.data.Dataset.from_generator``, which Petastorm's
``make_petastorm_dataset`` uses) calls ``mallopt(M_TRIM_THRESHOLD, 128 KiB)`` when its iterator first
runs; it logs ``Memory patch applied: M_TRIM_THRESHOLD=128 kb was set``. Any explicit ``mallopt`` of
a threshold switches off glibc's *dynamic* mmap threshold, so from then on every allocation above
128 KiB (each batch, each convolution activation) is a fresh ``mmap`` that is ``munmap``-ed when freed,
and its pages fault in again on the next step: the Petastorm-fed loop then trains far slower than the
same loop fed from NumPy arrays, which never creates a generator (figures in docs/results.md).

:func:`keep_freed_memory` sets both thresholds back to values at which the allocator reuses freed
blocks (mmap only above 32 MiB, the dynamic threshold's own ceiling on 64-bit; return memory to the
kernel once 256 MiB is free at the top of the heap). It must run *after* the generator's first element,
or TensorFlow's call overrides it. This is the C library's documented tuning interface; TensorFlow is
not patched. It costs at most that much retained memory per worker.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20
TRIM_THRESHOLD_BYTES = 256 << 20


def keep_freed_memory(mmap_threshold: int = MMAP_THRESHOLD_BYTES,
                      trim_threshold: int = TRIM_THRESHOLD_BYTES) -> bool:
    """Let glibc reuse freed blocks instead of unmapping them (see the module docstring).

    Parameters
    ----------
    mmap_threshold : int
        Bytes; allocations at least this large are served by ``mmap``.
    trim_threshold : int
        Bytes of free memory at the top of the heap before it is returned to the kernel.

    Returns
    -------
    bool
        True when both settings were applied; False on a C library without ``mallopt`` (e.g. musl,
        macOS), where nothing is changed.
    """
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        log.debug("no mallopt in the C library (%s); allocator left as it is", name)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, int(mmap_threshold)) == 1 and mallopt(M_TRIM_THRESHOLD, int(trim_threshold)) == 1
    log.info("allocator: mmap threshold %d MiB, trim threshold %d MiB (%s)", mmap_threshold >> 20,
             trim_threshold >> 20, "applied" if ok else "refused")
    return ok
