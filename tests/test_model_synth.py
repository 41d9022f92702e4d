"""Kept only for ``tests/test_evaluation_report.py``, which still imports ``synth_frames`` from here: the
synthetic rows now live in ``helpers.py`` (import them from there). No tests here; delete this file once
nothing imports it."""
from __future__ import annotations

from helpers import EXAMPLES, GENRES, N_FRAMES, N_MELS, SPLITS, synth_frames, synth_rows  # noqa: F401
