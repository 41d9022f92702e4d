"""Ground truth of the demo catalog: latent values and TRUE hit probabilities per (track, cutoff).

The label (see :mod:`hitcast.features.labels`) is: ``future_plays`` = plays in ``[T, T + horizon)``;
within the cohort of tracks released before ``T + cold_start_days``, a track is a hit when its
``percent_rank`` of future plays is at least ``1 - hit_share``. Given the latents, the random parts of
the simulation are the weekly noise, the viral bursts and the Poisson counts
(:mod:`hitcast.demo.model`); this module integrates them by Monte Carlo (``demo.mc_draws`` draws of
the whole cohort, because the hit threshold depends on every other track).

Files (never read by the pipeline): ``<raw>/../truth/tracks.parquet`` and
``<raw>/../truth/hit_probability.parquet``.
"""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from hitcast.config import Config
from hitcast.demo import model

log = logging.getLogger(__name__)

TRACK_TRUTH_COLUMNS = ["track_id", "track_idx", "artist_idx", "genre", "release_day", "explicit", "audio_appeal",
                       "log_fan_base", "log_rate", "lam", "skip_p"]


def truth_dir(raw: Path) -> Path:
    """Where the truth of a generated ``raw`` folder lives: its sibling ``truth/``."""
    return Path(raw).parent / "truth"


def window_weights(lat: pd.DataFrame, *, t0: int, horizon: int, n_days: int) -> np.ndarray:
    """Expected plays per calendar week inside ``[t0, t0 + horizon)`` before noise and bursts.

    Returns
    -------
    np.ndarray, shape (n_tracks, n_weeks), float64
        Column k is the week ``t0 // 7 + k``; days past the simulation end count 0.
    """
    days = np.arange(t0, min(t0 + horizon, n_days))
    if days.size == 0:
        return np.zeros((len(lat), 1))
    rates = model.base_rate(lat["lam"].to_numpy(), lat["release_day"].to_numpy(), days)
    rates *= (1.0 - lat["skip_p"].to_numpy())[:, None]
    weeks = days // 7 - days[0] // 7
    out = np.zeros((len(lat), int(weeks[-1]) + 1))
    for k in range(out.shape[1]):
        out[:, k] = rates[:, weeks == k].sum(axis=1)
    return out


def hit_probabilities(weights: np.ndarray, *, hit_share: float, draws: int, rng: np.random.Generator,
                      chunk: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo P(hit) for each track of one cohort.

    Parameters
    ----------
    weights : np.ndarray, shape (n, n_weeks)
        From :func:`window_weights`, cohort rows only.

    Returns
    -------
    (probability, expected_plays) : two np.ndarray of shape (n,)
    """
    n, n_w = weights.shape
    hits = np.zeros(n)
    done = 0
    while done < draws:
        c = min(chunk, draws - done)
        lam = np.einsum("cnw,nw->cn", model.week_multipliers(rng, (c, n, n_w)), weights)
        plays = rng.poisson(lam)
        hits += model.is_hit(model.percent_rank(plays), hit_share).sum(axis=0)
        done += c
    return hits / max(draws, 1), weights.sum(axis=1) * model.MEAN_BURST


def compute_truth(lat: pd.DataFrame, cfg: Config, *, n_days: int, seed: int) -> pd.DataFrame:
    """TRUE hit probability of every eligible track at every configured cutoff.

    Returns
    -------
    pandas.DataFrame[track_id str, cutoff datetime.date, true_hit_probability float64,
    expected_future_plays float64, cohort_size int64]
    """
    start = dt.date.fromisoformat(cfg.demo.start_date)
    fs = cfg.features
    rng = np.random.default_rng([seed, 5])
    frames = []
    for cutoff in fs.cutoffs:
        c = dt.date.fromisoformat(cutoff)
        t0 = (c - start).days
        cohort = lat[lat["release_day"] < t0 + fs.cold_start_days]
        if cohort.empty:
            continue
        w = window_weights(cohort, t0=t0, horizon=fs.horizon_days, n_days=n_days)
        prob, expected = hit_probabilities(w, hit_share=fs.hit_share, draws=cfg.demo.mc_draws, rng=rng)
        frames.append(pd.DataFrame({"track_id": cohort["track_id"].to_numpy(), "cutoff": c,
                                    "true_hit_probability": prob, "expected_future_plays": expected,
                                    "cohort_size": np.int64(len(cohort))}))
        log.info("truth at %s: %d tracks in cohort, mean P(hit) %.3f", cutoff, len(cohort), float(prob.mean()))
    cols = ["track_id", "cutoff", "true_hit_probability", "expected_future_plays", "cohort_size"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def write_truth(lat: pd.DataFrame, probs: pd.DataFrame, raw: Path) -> Path:
    """Write ``tracks.parquet`` and ``hit_probability.parquet`` into :func:`truth_dir`; returns the folder."""
    folder = truth_dir(raw)
    folder.mkdir(parents=True, exist_ok=True)
    lat[TRACK_TRUTH_COLUMNS].to_parquet(folder / "tracks.parquet", index=False)
    probs.to_parquet(folder / "hit_probability.parquet", index=False)
    return folder


def load_truth(cfg: Config, raw: str | Path | None = None) -> pd.DataFrame:
    """The demo's ground truth, for evaluation only.

    Parameters
    ----------
    cfg : Config
        ``paths.raw`` locates the generated data unless ``raw`` is given.

    Returns
    -------
    pandas.DataFrame, one row per (track_id, cutoff) in each cutoff's eligible cohort:
        track_id str, cutoff datetime.date, true_hit_probability float64 (P(is_hit = 1) given the latents),
        expected_future_plays float64, cohort_size int64, genre str, audio_appeal float64,
        log_fan_base float64, log_rate float64, release_day int64, explicit bool.
    """
    folder = truth_dir(Path(raw) if raw else cfg.path(cfg.paths.raw))
    probs = pd.read_parquet(folder / "hit_probability.parquet")
    tracks = pd.read_parquet(folder / "tracks.parquet")
    probs["cutoff"] = pd.to_datetime(probs["cutoff"]).dt.date
    return probs.merge(tracks.drop(columns=["track_idx", "artist_idx", "lam", "skip_p"]), on="track_id",
                       how="left")


def load_truth_or_reason(cfg: Config) -> tuple[pd.DataFrame | None, str]:
    """``(truth, "")`` or ``(None, reason)`` when the ground truth is unavailable (not a demo catalog):
    what ``jobs/evaluate.py`` hands the evaluation (:func:`hitcast.evaluation.suite.evaluate_catalog`)."""
    try:
        truth = load_truth(cfg)
    except (FileNotFoundError, OSError, KeyError, ValueError) as exc:
        return None, f"no ground truth for this catalog under {cfg.path(cfg.paths.raw)} ({exc})"
    return truth, ""
