"""Audio to log-mel spectrograms, in plain Python (no Spark): path safety, decoding, DSP, statuses.

- :mod:`hitcast.audio.paths`: ``audio_path`` -> a file inside the audio roots, or ``rejected_path``;
- :mod:`hitcast.audio.decode`: soundfile decode, downmix, soxr resample, crop/pad policy;
- :mod:`hitcast.audio.dsp`: NumPy log-mel equal to librosa's (filterbank and window cached per process);
- :mod:`hitcast.audio.clip`: one file -> ``(status, error, db)``;
- :mod:`hitcast.audio.status`: the statuses and :class:`AudioError`.

The Spark side is :mod:`hitcast.spectrograms.stage`.
"""
from hitcast.audio.clip import ClipResult, compute_clip, log_mel_clip, sha256_file
from hitcast.audio.dsp import clip_samples, dsp_version, log_mel, n_frames
from hitcast.audio.paths import real_roots, resolve_audio_path
from hitcast.audio.status import STATUSES, AudioError

__all__ = ["AudioError", "ClipResult", "STATUSES", "clip_samples", "compute_clip", "dsp_version", "log_mel",
           "log_mel_clip", "n_frames", "real_roots", "resolve_audio_path", "sha256_file"]
