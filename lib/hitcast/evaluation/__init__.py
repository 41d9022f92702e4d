"""Honest evaluation on the time-split test set: metrics, ablations, baselines, the ground-truth limit,
the real-data (Spotify hit-predictor) run and the Markdown/PNG report."""
