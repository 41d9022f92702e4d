"""The evaluation report: Markdown with tables, PNG plots beside it, and ``results.json``.

Plots (matplotlib, Agg backend): ``roc.png``, ``pr.png``, ``calibration.png``, ``per_genre.png``,
``score_distribution.png``. The first result passed is the primary model (the fused one).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from hitcast.evaluation.ablations import ModelResult
from hitcast.metrics import calibration_curve, fmt

log = logging.getLogger(__name__)

PLOTS = ("roc.png", "pr.png", "calibration.png", "per_genre.png", "score_distribution.png")
METRIC_COLUMNS = ("f1", "precision", "recall", "roc_auc", "pr_auc", "brier")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(results: Sequence[ModelResult], out_dir: Path, bins: int) -> list[Path]:
    """Write the PNG plots of ``results`` into ``out_dir``; returns their paths (see module docstring)."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    plt = _pyplot()
    paths = []
    fig, ax = plt.subplots(figsize=(5, 5))
    for r in results:
        fpr, tpr, _ = roc_curve(r.test["is_hit"], r.test["p"])
        ax.plot(fpr, tpr, label=f"{r.name} (AUC {fmt(r.metrics['roc_auc'])})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, test split")
    ax.legend(fontsize=8)
    paths.append(_save(fig, out_dir / "roc.png"))

    fig, ax = plt.subplots(figsize=(5, 5))
    for r in results:
        prec, rec, _ = precision_recall_curve(r.test["is_hit"], r.test["p"])
        ax.plot(rec, prec, label=f"{r.name} (AP {fmt(r.metrics['pr_auc'])})")
    base = float(np.mean(results[0].test["is_hit"])) if len(results[0].test) else 0.0
    ax.axhline(base, color="k", ls=":", lw=1)
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall, test split")
    ax.legend(fontsize=8)
    paths.append(_save(fig, out_dir / "pr.png"))

    fig, ax = plt.subplots(figsize=(5, 5))
    for r in results:
        mean_p, rate, _ = calibration_curve(r.test["is_hit"].to_numpy(), r.test["p"].to_numpy(), bins)
        ax.plot(mean_p, rate, "o-", ms=3, label=f"{r.name} (Brier {fmt(r.metrics['brier'])})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="mean predicted probability", ylabel="observed hit rate", title="Calibration, test split")
    ax.legend(fontsize=8)
    paths.append(_save(fig, out_dir / "calibration.png"))

    fig, ax = plt.subplots(figsize=(9, 4))
    genres = sorted({g for r in results if "genre" in r.breakdown for g in r.breakdown["genre"]["genre"]})
    width = 0.8 / max(len(results), 1)
    for i, r in enumerate(results):
        table = r.breakdown.get("genre", pd.DataFrame(columns=["genre", "f1"])).set_index("genre")
        vals = [float(table["f1"].get(g, np.nan)) for g in genres]
        ax.bar(np.arange(len(genres)) + i * width, vals, width, label=r.name)
    ax.set_xticks(np.arange(len(genres)) + 0.4 - width / 2, genres, rotation=30, ha="right")
    ax.set(ylabel="F1", title="F1 per genre, test split")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))   # beside the bars, not over them
    paths.append(_save(fig, out_dir / "per_genre.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    r = results[0]
    for label, name in ((0, "not a hit"), (1, "hit")):
        ax.hist(r.test.loc[r.test["is_hit"] == label, "p"], bins=20, range=(0, 1), alpha=0.6, label=name)
    ax.axvline(r.threshold, color="k", ls="--", lw=1, label=f"threshold {r.threshold:.2f}")
    ax.set(xlabel=f"{r.name} hit probability", ylabel="test rows", title="Score distribution")
    ax.legend(fontsize=8)
    paths.append(_save(fig, out_dir / "score_distribution.png"))
    return paths


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _pyplot().close(fig)
    return path


def metrics_table(results: Sequence[ModelResult]) -> str:
    """Markdown table: one row per model, test metrics at the validation-chosen threshold."""
    lines = ["| model | version | threshold | F1 | precision | recall | ROC-AUC | PR-AUC | Brier | F1 top share "
             "| rows |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        m = r.metrics
        lines.append(f"| {r.name} | `{r.version}` | {fmt(r.threshold)} | " +
                     " | ".join(fmt(m[c]) for c in METRIC_COLUMNS) +
                     f" | {fmt(m.get('f1_top_share', float('nan')))} | {m['rows']} |")
    return "\n".join(lines)


def breakdown_table(results: Sequence[ModelResult], by: str) -> str:
    """Markdown table of F1 / ROC-AUC per ``by`` group, one column pair per model."""
    groups = sorted({str(g) for r in results if by in r.breakdown for g in r.breakdown[by][by]})
    if not groups:
        return "_(no group with enough rows)_"
    head = "| " + by + " | rows | hits | " + " | ".join(f"{r.name} F1 | {r.name} AUC" for r in results) + " |"
    lines = [head, "|" + "---|" * (3 + 2 * len(results))]
    for g in groups:
        cells, rows, hits = [], "", ""
        for r in results:
            t = r.breakdown.get(by)
            match = t[t[by].astype(str) == g] if t is not None else pd.DataFrame()
            if len(match):
                rows, hits = rows or str(int(match["rows"].iloc[0])), hits or str(int(match["positives"].iloc[0]))
                cells += [fmt(float(match["f1"].iloc[0])), fmt(float(match["roc_auc"].iloc[0]))]
            else:
                cells += ["-", "-"]
        lines.append(f"| {g} | {rows} | {hits} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(results: Sequence[ModelResult], out_dir: Path, *, title: str, notes: Sequence[str] = (),
                 bins: int) -> Path:
    """Write ``report.md``, the PNG plots and ``results.json`` into ``out_dir``.

    Returns
    -------
    pathlib.Path
        The Markdown report.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_curves(results, out_dir, bins)
    parts = [f"# {title}", ""]
    parts += [f"- {n}" for n in notes] + [""]
    parts += ["## Test split (threshold chosen on validation)", "", metrics_table(results), ""]
    for by, heading in (("genre", "Per genre"), ("period", "Per release period (quarter)"),
                        ("cold_start", "Cold start (no engagement before the cutoff) vs. the rest")):
        if any(by in r.breakdown for r in results):
            parts += [f"## {heading}", "", breakdown_table(results, by), ""]
    parts += ["## Plots", ""] + [f"![{p[:-4]}]({p})" for p in PLOTS] + [""]
    path = out_dir / "report.md"
    path.write_text("\n".join(parts))
    (out_dir / "results.json").write_text(json.dumps(
        {r.name: {"version": r.version, "threshold": r.threshold, "test": r.metrics, "validation": r.validation}
         for r in results}, indent=2, sort_keys=True, default=float))
    log.info("report written to %s", path)
    return path
