"""Once-per-process set-up of Python workers: the imports' objects are frozen out of the collector once."""
from __future__ import annotations

import gc

from hitcast import workerprep


def test_prepare_worker_freezes_once_per_process(monkeypatch):
    monkeypatch.setattr(workerprep, "_prepared", False)
    calls = []
    real_freeze = gc.freeze
    monkeypatch.setattr(workerprep.gc, "freeze", lambda: (calls.append(1), real_freeze()))
    before = gc.get_freeze_count()
    try:
        workerprep.prepare_worker()
        assert calls == [1] and gc.get_freeze_count() > before      # the live objects left the collector
        workerprep.prepare_worker()                                  # a second task in the same worker
        assert calls == [1]
    finally:
        gc.unfreeze()
