"""Once-per-process set-up of Python workers: the imports' objects are frozen out of the collector once."""
from __future__ import annotations

import gc

from hitcast import workerprep


def test_prepare_worker_runs_once_and_freezes(monkeypatch):
    monkeypatch.setattr(workerprep, "_prepared", False)
    before = gc.get_freeze_count()
    try:
        workerprep.prepare_worker()
        frozen = gc.get_freeze_count()
        assert frozen > before
        workerprep.prepare_worker()                     # second call: nothing more is frozen
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
