"""The analysts' notebook runs headless (nbclient) against a real SQL endpoint over a small pipeline's tables:
every cell runs without error, the answers have the expected rows and columns, and the plots are drawn."""
from __future__ import annotations

import json
import logging
import time

import pytest
from pyspark.sql import functions as F

from analyst_pipeline import EARLY_AS_OF, scored_pipeline
from helpers import REPO

log = logging.getLogger(__name__)
NOTEBOOK = REPO / "notebooks" / "analyst_queries.ipynb"


@pytest.fixture(scope="module")
def executed(spark, tmp_path_factory, trained_demo, analysts_endpoint, monkeypatch_module):
    """The notebook, executed against the session's SQL endpoint over the analysts' pipeline (conftest.py)."""
    import nbclient
    import nbformat

    pipeline = scored_pipeline(spark, tmp_path_factory.mktemp("analysts") / "root", trained_demo)
    cfg, info = analysts_endpoint
    for key, value in {"HITCAST_SQL_HOST": info.host, "HITCAST_SQL_PORT": str(info.port),
                       "HITCAST_SQL_VIEWS": cfg.sql.views_database, "HITCAST_SQL_TABLES": cfg.sql.tables_database,
                       "MPLBACKEND": "module://matplotlib_inline.backend_inline"}.items():
        monkeypatch_module.setenv(key, value)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    t0 = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    log.info("notebook executed in %.1f s", time.perf_counter() - t0)
    return pipeline, cfg, nb


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def cell(nb, tag: str):
    found = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(found) == 1, f"one cell tagged {tag}"
    return found[0]


def test_every_cell_ran_without_error(executed):
    _, _, nb = executed
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors[0].get("evalue") if errors else ""


def test_the_plots_are_drawn(executed):
    _, _, nb = executed
    for tag in ("reasons", "history", "distribution", "calibration"):
        outputs = cell(nb, tag).outputs
        assert any("image/png" in o.get("data", {}) for o in outputs), f"no figure in the {tag} cell"


def test_the_answers_have_the_expected_rows_and_columns(executed, spark):
    from hitcast.features.labels import in_cohort

    pipeline, cfg, nb = executed
    summary = json.loads("".join(o.text for o in cell(nb, "summary").outputs if o.output_type == "stream"))
    read = lambda name: spark.read.format("delta").load(cfg.table(name))       # noqa: E731
    champion = read("models").where("role = 'champion'").select("model_version")
    # the catalog's musical `mode` would clash with the prediction's
    current = read("predictions").join(champion, "model_version").join(read("catalog").select("track_id", "genre"),
                                                                       "track_id")
    genres = {r.genre: r["count"] for r in current.groupBy("genre").count().collect()}
    cold = current.where("mode = 'cold_start'").count()
    assert summary["top_tracks"] == {"rows": sum(min(n, cfg.sql.top_n) for n in genres.values()), "columns": [
        "genre", "genre_rank", "track_id", "title", "artist_name", "hit_probability", "predicted_hit", "mode", "as_of"]}
    assert summary["watchlist"]["rows"] == min(cold, 15) > 0
    assert 0 < summary["rising"]["rows"] <= 15
    assert summary["rising"]["columns"][:3] == ["rise_rank", "track_id", "title"]
    assert summary["leaderboard"]["rows"] == read("models").count()
    assert summary["reasons"] == {"rows": cfg.score.reasons, "columns": ["input", "contribution"]}
    assert summary["history"]["rows"] >= 2        # a score per run that changed it, for up to 5 tracks
    assert summary["history"]["columns"] == ["track_id", "title", "as_of", "committed_at", "hit_probability"]
    # calibration: every track of the early run's cohort (released before EARLY_AS_OF + cold_start_days) whose
    # label window has passed; the late run's window has not
    cohort = read("catalog").where(in_cohort(F.col("release_date"), F.lit(EARLY_AS_OF), cfg.features.cold_start_days))
    assert summary["outcomes"]["rows"] == cohort.count() > 0
    assert summary["calibration"]["columns"] == ["bin", "tracks", "mean_predicted", "hit_rate"]
    assert 1 <= summary["calibration"]["rows"] <= 5
    assert summary["as_of"]["rows"] == 1
    as_of_text = "".join(o.get("data", {}).get("text/plain", "") for o in cell(nb, "as_of").outputs)
    assert str(EARLY_AS_OF) in as_of_text          # on date D the track's prediction was the early run's
