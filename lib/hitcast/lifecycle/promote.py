"""Promotion: make a candidate model version the champion that catalog scoring uses (``jobs/promote.py``).

The candidate and the current champion score the same rows: the labelled test split of
``training_examples`` (``split == 'test'``, ``is_hit`` 0/1) joined with ``spectrograms``, built as the evaluation
builds them (:func:`hitcast.evaluation.ablations.eval_rows`). Each model is judged at its own saved threshold
(:attr:`hitcast.model.bundle.ModelBundle.threshold`) with :func:`hitcast.metrics.binary_metrics`.

The candidate is refused (:class:`PromotionRefused`, the figures of both models in the message) when its
ROC-AUC is below the champion's by more than ``promote.margin_roc_auc`` or its F1 by more than
``promote.margin_f1``. ``force=True`` promotes it anyway and records the reason. With no champion yet the
candidate becomes the first one. The champion before becomes ``archived`` in the same Delta commit
(:func:`hitcast.lifecycle.registry.set_role`, which moves the MLflow alias ``champion``), and a row is appended to the Delta table ``model_promotions``
(schema :data:`hitcast.schemas.MODEL_PROMOTIONS`).
"""
from __future__ import annotations

import datetime as dt
import getpass
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pyspark.sql import Row, SparkSession

from hitcast.config import Config, PromoteSection
from hitcast.errors import HitcastError
from hitcast.evaluation.ablations import eval_rows
from hitcast.lifecycle import registry, tracking
from hitcast.metrics import binary_metrics
from hitcast.model.bundle import load_bundle
from hitcast.schemas import MODEL_PROMOTIONS
from hitcast.tables import read_table, table_exists

log = logging.getLogger(__name__)

#: Roles a version may be promoted from without ``force`` (``archived``: rolling back to an earlier champion).
PROMOTABLE = ("candidate", "archived")


class PromotionError(HitcastError):
    """A promotion that cannot be made as asked (the message names the version and what to do)."""


class PromotionRefused(PromotionError):
    """The candidate is worse than the champion beyond the configured margins (both models' figures in the
    message)."""


@dataclass(frozen=True)
class Figures:
    """One model version on the test split: ROC-AUC, and F1 at its own saved ``threshold``."""

    version: str
    roc_auc: float
    f1: float
    threshold: float

    def __str__(self) -> str:
        return f"{self.version}: ROC-AUC {self.roc_auc:.4f}, F1 {self.f1:.4f} at threshold {self.threshold:.3f}"


@dataclass
class PromotionSummary:
    """What :func:`run_promote` did.

    Attributes
    ----------
    version : str
        The version asked to be champion.
    previous : str or None
        The champion before (``None``: this is the first champion).
    promoted : bool
        False only when ``version`` already was the champion.
    forced : bool
    reason : str
        The reason recorded in ``models.role_reason``.
    test_rows : int
        Labelled test rows both models scored.
    candidate, champion : Figures or None
        Test-split figures (``None`` when not computed: no champion, or no test rows).
    """

    version: str
    previous: str | None
    promoted: bool
    forced: bool
    reason: str
    test_rows: int
    candidate: Figures | None = None
    champion: Figures | None = None

    def __str__(self) -> str:
        if not self.promoted:
            return f"model version {self.version} already is the champion; nothing changed"
        before = f", replacing {self.previous} (now archived)" if self.previous else " (the first champion)"
        return f"model version {self.version} is the champion{before}: {self.reason}"


def promotion_rows(spark: SparkSession, cfg: Config) -> pd.DataFrame:
    """The labelled test rows of ``training_examples`` with their spectrograms (and the columns of the model
    spec's other input groups), as the bundles score them.

    Returns
    -------
    pandas.DataFrame
        One row per ``(track_id, cutoff)`` with ``split == 'test'`` and ``is_hit`` in {0, 1}: the
        ``training_examples`` columns plus ``status``, ``mel``, ``n_mels``, ``n_frames``, ``period``.
    """
    from hitcast.model.dataset import group_sources
    from hitcast.model.spec import DEFAULT_SPEC

    examples = read_table(spark, cfg, "training_examples")
    spectrograms = read_table(spark, cfg, "spectrograms") if table_exists(spark, cfg.table("spectrograms")) else None
    return eval_rows(examples, spectrograms, splits=("test",), sources=group_sources(spark, cfg, DEFAULT_SPEC))


def figures(version: str, path: Path, rows: pd.DataFrame) -> Figures:
    """Score ``rows`` (with an ``is_hit`` column) with the bundle at ``path``: ROC-AUC and F1 at its threshold."""
    bundle = load_bundle(path)
    p = bundle.predict_pandas(rows)["hit_probability"].to_numpy()
    m = binary_metrics(rows["is_hit"].to_numpy(), p, bundle.threshold)
    return Figures(version, m["roc_auc"], m["f1"], bundle.threshold)


def _worse(candidate: float, champion: float, margin: float) -> bool:
    """True when ``candidate`` is below ``champion`` by more than ``margin`` (a NaN candidate against a
    defined champion is worse; an undefined champion figure compares with nothing)."""
    if math.isnan(champion):
        return False
    return not candidate >= champion - margin - 1e-12


def refusal(candidate: Figures, champion: Figures, *, rows: int, margins: PromoteSection) -> str | None:
    """The refusal message when ``candidate`` is worse than ``champion`` beyond ``margins``, else ``None``."""
    failed = [name for name, worse in
              (("ROC-AUC", _worse(candidate.roc_auc, champion.roc_auc, margins.margin_roc_auc)),
               ("F1", _worse(candidate.f1, champion.f1, margins.margin_f1))) if worse]
    if not failed:
        return None
    return (f"model version {candidate.version} not promoted: on the {rows} test rows of training_examples it is "
            f"worse than the champion {champion.version} beyond the margin on {' and '.join(failed)}: "
            f"ROC-AUC {candidate.roc_auc:.4f} vs {champion.roc_auc:.4f} "
            f"(promote.margin_roc_auc {margins.margin_roc_auc:g}), "
            f"F1 {candidate.f1:.4f} vs {champion.f1:.4f} at thresholds {candidate.threshold:.3f} and "
            f"{champion.threshold:.3f} (promote.margin_f1 {margins.margin_f1:g}); "
            "jobs/promote.py --force --reason TEXT promotes it anyway")


def _reason(candidate: Figures | None, champion: Figures | None, *, previous: str | None, rows: int,
            forced: bool, reason: str) -> str:
    """The ``models.role_reason`` text: why, and the figures the decision saw."""
    if previous is None:
        why = "first champion"
    elif forced:
        why = "forced"
    else:
        why = f"within the margins of champion {previous}"
    parts = [why + (f": {reason}" if reason else "")]
    if candidate is None:
        parts.append("no labelled test rows")
    elif champion is None:
        parts.append(f"test ROC-AUC {candidate.roc_auc:.4f}, F1 {candidate.f1:.4f} on {rows} rows")
    else:
        parts.append(f"test ROC-AUC {candidate.roc_auc:.4f} vs {champion.roc_auc:.4f}, "
                     f"F1 {candidate.f1:.4f} vs {champion.f1:.4f} on {rows} rows")
    return "; ".join(parts)


def _user() -> str:
    """The operating-system user running the promotion."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def log_promotion(spark: SparkSession, cfg: Config, summary: PromotionSummary) -> None:
    """Append ``summary`` to the Delta table ``model_promotions`` (schema ``MODEL_PROMOTIONS``)."""
    c, h = summary.candidate, summary.champion
    row = (dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), summary.version, summary.previous,
           summary.forced, summary.reason, _user(), summary.test_rows,
           c.roc_auc if c else None, c.f1 if c else None, c.threshold if c else None,
           h.roc_auc if h else None, h.f1 if h else None, h.threshold if h else None)
    spark.createDataFrame([row], MODEL_PROMOTIONS).write.format("delta").mode("append") \
        .save(cfg.table("model_promotions"))


def _pick(models: list[Row], cfg: Config, version: str | None) -> tuple[Row, Row | None]:
    """``(candidate, champion)`` rows of ``models``: the named version, or the newest ``candidate`` or
    ``champion`` of ``cfg.train.variant`` (when that is the champion, no candidate is newer: nothing to do)."""
    champion = next((r for r in models if r["role"] == "champion"), None)
    if version:
        named = [r for r in models if r["model_version"] == version]
        if not named:
            raise registry.ModelNotFoundError(f"model version '{version}' not found in {cfg.table('models')}")
        return named[0], champion
    mine = [r for r in models if r["variant"] == cfg.train.variant and r["role"] in ("candidate", "champion")]
    if not mine:
        raise registry.ModelNotFoundError(f"no candidate model of variant '{cfg.train.variant}' in "
                                          f"{cfg.table('models')}; run jobs/train.py")
    return max(mine, key=lambda r: (r["created_at"], r["model_version"])), champion


def run_promote(spark: SparkSession, cfg: Config, *, version: str | None = None, force: bool = False,
                reason: str = "") -> PromotionSummary:
    """Make ``version`` the champion, unless it is worse than the champion beyond the margins.

    Parameters
    ----------
    version : str, optional
        A model version in ``models`` with role ``candidate`` or ``archived`` (``ablation`` needs ``force``).
        Default: the newest ``candidate`` of ``cfg.train.variant``; when the champion is newer than every
        candidate (a re-run of ``make demo``), nothing changes.
    force : bool
        Promote even when the candidate is worse beyond the margins; needs ``reason``.
    reason : str
        Recorded in ``models.role_reason`` and ``model_promotions.reason``.

    Returns
    -------
    PromotionSummary

    Raises
    ------
    PromotionRefused
        The candidate is worse than the champion beyond ``cfg.promote`` margins (both figures in the message).
    PromotionError
        ``force`` without ``reason``; an ablation without ``force``; a champion but no labelled test rows.
    hitcast.lifecycle.registry.ModelNotFoundError
        No such version, or no candidate.
    """
    reason = reason.strip()
    if force and not reason:
        raise PromotionError("--force needs --reason TEXT: the reason is recorded in models.role_reason and "
                             "model_promotions")
    models = registry.read_models(spark, cfg).select("model_version", "variant", "role", "path", "created_at") \
        .collect()
    cand, champ = _pick(models, cfg, version)
    cand_version, cand_path = cand["model_version"], Path(cand["path"])
    champ_version, champ_path = (champ["model_version"], Path(champ["path"])) if champ else (None, None)
    if cand_version == champ_version:
        registry.ensure_tracked(spark, cfg, cand_version)
        tracking.move_champion(cfg, cand_version)      # a warehouse from before MLflow: the alias follows
        log.info("model version %s already is the champion", cand_version)
        return PromotionSummary(cand_version, cand_version, False, force, "", 0)
    if cand["role"] not in PROMOTABLE and not force:
        raise PromotionError(f"model version {cand_version} has role {cand['role']}, not candidate or archived; "
                             "jobs/promote.py --force --reason TEXT promotes it anyway")
    rows = promotion_rows(spark, cfg)
    if champ_version is not None and rows.empty and not force:
        raise PromotionError(f"training_examples has no labelled test rows to compare model version {cand_version} "
                             f"with the champion {champ_version}; run jobs/features.py, or pass --force --reason")
    candidate = figures(cand_version, cand_path, rows) if not rows.empty else None
    champion = figures(champ_version, champ_path, rows) if champ_version and not rows.empty else None
    if candidate is not None and champion is not None and not force:
        message = refusal(candidate, champion, rows=len(rows), margins=cfg.promote)
        if message:
            registry.ensure_tracked(spark, cfg, cand_version)
            tracking.set_tag(cfg, cand_version, "promotion_refused", message)
            raise PromotionRefused(message)
    why = _reason(candidate, champion, previous=champ_version, rows=len(rows), forced=force, reason=reason)
    registry.set_role(spark, cfg, cand_version, "champion", reason=why)
    if force:
        tracking.set_tag(cfg, cand_version, "promotion_forced", reason)
    summary = PromotionSummary(cand_version, champ_version, True, force, why, len(rows), candidate, champion)
    log_promotion(spark, cfg, summary)
    return summary
