"""The NumPy log-mel against librosa, on real recordings from ../shared/data/audio-clips.

Stated tolerances (dB, values in [-80, 0]):

- DSP alone (the same mono signal into both): max |error| < 0.002 dB, mean |error| < 1e-4 dB
  (measured: max 0.0012, mean 8e-6: float32 rounding only);
- the whole path (hitcast's seek + crop + soxr decode vs ``librosa.load`` of the full file, then the same
  centre crop): mean |error| < 0.02 dB, 99th percentile < 0.2 dB, max < 3 dB (measured: mean 0.007,
  p99 0.08, max 2.0 on 44.1 kHz files, where resampling a crop and the whole file align a fraction of
  a sample differently; the largest errors are in near-silent cells).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest
import scipy.signal

from hitcast.audio import clip_samples, dsp_version, log_mel, log_mel_clip, n_frames
from hitcast.audio.dsp import hann_window, mel_filterbank
from helpers import centre_crop, dsp_settings, librosa_reference

CLIPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "audio-clips"
DSP = dsp_settings()


def real_clips() -> list[Path]:
    if not CLIPS.is_dir():
        pytest.skip(f"real clips not found at {CLIPS} (../shared/data/audio-clips beside the repo)")
    return sorted(CLIPS.glob("*.ogg"))


def test_filterbank_and_window_equal_librosa_and_are_built_once():
    fb = mel_filterbank(22050, n_fft=1024, n_mels=64, fmin=20.0, fmax=11025.0)
    ref = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=64, fmin=20.0, fmax=11025.0)
    assert fb.shape == (64, 513) and fb.dtype == np.float32
    assert float(np.abs(fb - ref).max()) < 1e-8
    np.testing.assert_allclose(hann_window(1024), scipy.signal.get_window("hann", 1024), atol=1e-7)
    assert mel_filterbank(22050, n_fft=1024, n_mels=64, fmin=20.0, fmax=11025.0) is fb  # cached per process
    assert hann_window(1024) is hann_window(1024)
    assert not fb.flags.writeable


def test_shape_and_frame_count():
    assert clip_samples(DSP) == 176400 and n_frames(DSP) == 345
    y = np.random.default_rng(0).standard_normal(176400).astype(np.float32)
    y[:44100] *= 1e-5                                  # 100 dB quieter: the top_db floor applies there
    db = log_mel(y, DSP)
    assert db.shape == (64, 345) and db.dtype == np.float32
    reference = librosa_reference(y, DSP)
    assert float(reference.min()) == -80.0
    assert float(np.abs(db - reference).max()) < 0.002
    assert n_frames(dsp_settings(clip_seconds=2.0, hop_length=256)) == 1 + 44100 // 256


def test_dsp_matches_librosa_on_real_clips():
    worst_max, means = 0.0, []
    for path in real_clips():
        y, _ = librosa.load(str(path), sr=DSP.sr)
        y = centre_crop(y, clip_samples(DSP))
        err = np.abs(log_mel(y, DSP) - librosa_reference(y, DSP))
        worst_max = max(worst_max, float(err.max()))
        means.append(float(err.mean()))
    assert len(means) == len(real_clips()) >= 28
    assert worst_max < 0.002, f"max abs error {worst_max:.5f} dB"
    assert max(means) < 1e-4, f"mean abs error {max(means):.6f} dB"


def test_whole_path_matches_librosa_load_on_real_clips():
    for path in real_clips():
        y, _ = librosa.load(str(path), sr=DSP.sr)
        ref = librosa_reference(centre_crop(y, clip_samples(DSP)), DSP)
        status, error, db = log_mel_clip(str(path), DSP)
        assert (path.name, status, error) == (path.name, "ok", None)
        err = np.abs(db - ref)
        assert float(err.mean()) < 0.02, (path.name, float(err.mean()))
        assert float(np.percentile(err, 99)) < 0.2, (path.name, float(np.percentile(err, 99)))
        assert float(err.max()) < 3.0, (path.name, float(err.max()))


def test_dsp_version_covers_exactly_the_settings_that_change_a_spectrogram():
    base = dsp_version(dsp_settings())
    assert re.fullmatch("[0-9a-f]{12}", base), base
    # the same in another process with another string-hash seed (the version is stored in the table)
    code = "from helpers import dsp_settings; from hitcast.audio import dsp_version; print(dsp_version(dsp_settings()))"
    env = dict(os.environ, PYTHONHASHSEED="12345", PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == base
    assert dsp_version(dsp_settings(tracks_per_partition=7)) == base
    changed = {dsp_version(dsp_settings(**{k: v})) for k, v in
               [("n_mels", 32), ("sr", 16000), ("hop_length", 256), ("clip_seconds", 4.0), ("crop", "start"),
                ("top_db", 60.0), ("fmin", 0.0), ("max_decode_seconds", 60.0), ("silence_dbfs", -80.0)]}
    assert len(changed) == 9 and base not in changed
