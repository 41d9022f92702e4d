"""The driver dies mid-write (issue 14): ``spark-submit`` of the scoring job, then of the ingest job, is killed
(SIGKILL to its process group: the ``spark-submit`` JVM and the Python driver together) after its MERGE has
started writing data files and before the MERGE commits.

The jobs are submitted with ``--master local[2]``: the job runs in the submitting JVM; this is deliberate, the
driver's death does not depend on where executors are.

The scoring test starts from a copy of the session's pipeline on the cluster (``cluster_pipeline``: inputs, a
champion, a first scoring run), the ingest test from the session's generated catalog (``demo_inputs``); each
copies its inputs (``shutil.copytree``): one copy is the reference, run to the end without a kill; the other
is the killed one. The kill is triggered from outside, by watching the table's
folder: the moment a data file appears that the table had not before, while ``_delta_log`` has no new commit,
the group is killed; afterwards the test checks that this is really what happened (files that no commit
references, the version unchanged). Then:

- the job's exit status is the kill, and no process of the group is left;
- the table is readable, at the version it had before the run, with the rows it had before;
- the run log / the other tables are consistent with that (no run logged for the killed scoring run);
- a re-run to the end gives the reference's rows, exactly one per key, and (scoring) rescores the tracks the
  killed run did not commit.

Each job runs three times on one copy, each run the re-run of the one before, so one copy and one
re-run serve two kills: scoring killed inside its MERGE, then just after its MERGE commits (before its row in
``scoring_runs``: the next run logs it from that commit, once, with the reference run's figures), then to the
end; ingest killed inside its catalog MERGE (its first write: no table may change), then inside its events
MERGE, then to the end.

The files the killed MERGE wrote stay in the table folder, referenced by no commit: that is expected of Delta
(readers only follow ``_delta_log``; ``VACUUM`` removes them once they are older than the retention period),
so the tests count them but never expect them gone.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from clusterfix import DEMO_SETTINGS, RUN_COLUMNS, job_args
from helpers import REPO, make_config
from hitcast.cluster.submit import log_tail, start_submit, submit
from hitcast.config import Config, load_config
from hitcast.daemons import group_members
from hitcast.ingest.pipeline import run_ingest
from hitcast.ingest.quarantine import KEYS as QUARANTINE_KEYS
from hitcast.scoring.stage import run_scoring
from hitcast.scoring.runlog import RUN_KEY
from hitcast.tables import latest_commits, read_table, table_version

pytestmark = pytest.mark.cluster

log = logging.getLogger(__name__)

NOW = "2026-01-10"
SETTINGS = [*DEMO_SETTINGS, "train.epochs=1", "train.batch_size=16", "train.workers=2", "train.ensemble=1",
            f"ingest.now={NOW}", "spark.shuffle_partitions=2"]
JOB_TIMEOUT_S = 1500
ATTEMPTS = 3


# --- Watching a Delta table from outside ---------------------------------------------------------------

def data_files(table: Path) -> set[str]:
    """Paths (relative to ``table``) of every Parquet data file under ``table``, ``_delta_log`` excluded."""
    if not table.is_dir():
        return set()
    return {str(p.relative_to(table)) for p in table.rglob("*.parquet") if "_delta_log" not in p.parts}


def log_version(table: Path) -> int | None:
    """The highest commit number in ``table/_delta_log`` (``None`` without one)."""
    versions = [int(p.name[:-5]) for p in (table / "_delta_log").glob("*.json") if p.name[:-5].isdigit()]
    return max(versions) if versions else None


def referenced_files(table: Path) -> set[str]:
    """Every data file some commit of ``table`` has added (``add`` and ``cdc`` actions, ever)."""
    out: set[str] = set()
    for commit in (table / "_delta_log").glob("*.json"):
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            for kind in ("add", "cdc"):
                if kind in action:
                    out.add(unquote(action[kind]["path"]))
    return out


def orphan_files(table: Path) -> set[str]:
    """Data files under ``table`` that no commit references."""
    return data_files(table) - referenced_files(table)


def kill_inside_merge(proc: subprocess.Popen, table: Path, *, log_path: Path, timeout_s: float) -> dict | None:
    """Poll ``table`` until the running job has written a data file it did not have, with no new commit, then
    SIGKILL the job's process group. Returns what was seen (``None``: the job committed before any new file was
    seen, or ended: no kill)."""
    before_files, before_version = data_files(table), log_version(table)
    t0 = time.monotonic()
    while proc.poll() is None:
        new = data_files(table) - before_files
        version = log_version(table)
        if version != before_version:
            return None
        if new:
            os.killpg(proc.pid, signal.SIGKILL)
            return {"new_files": len(new), "version": before_version, "seconds": time.monotonic() - t0}
        if time.monotonic() - t0 > timeout_s:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise AssertionError(f"{timeout_s:.0f} s passed before {table.name}'s MERGE wrote\n{log_tail(log_path)}")
        time.sleep(0.005)
    return None


def killed_run(cfg: Config, job: str, args: list[str], *, table: Path, log_path: Path) -> dict | None:
    """Start ``jobs/<job>.py`` through ``spark-submit --master local[2]`` and kill it inside its MERGE into
    ``table``; returns what :func:`kill_inside_merge` saw plus the exit status and the table's state after."""
    proc = start_submit(cfg, REPO / "jobs" / f"{job}.py", args, log_path=log_path, master="local[2]")
    try:
        seen = kill_inside_merge(proc, table, log_path=log_path, timeout_s=JOB_TIMEOUT_S)
    finally:
        if proc.poll() is None and seen is None:
            os.killpg(proc.pid, signal.SIGKILL)
        code = proc.wait(timeout=120)
    deadline = time.monotonic() + 60
    while group_members({proc.pid}) and time.monotonic() < deadline:   # the kernel reaps the group's members
        time.sleep(0.1)
    assert group_members({proc.pid}) == [], "a process of the killed job is left"
    if seen is None:
        log.warning("no kill inside the MERGE (exit %s): %s", code, log_tail(log_path, 5))
        return None
    return {**seen, "exit": code, "version_after": log_version(table), "orphans": len(orphan_files(table))}


def submit_cfg(root: Path) -> Config:
    """The configuration ``spark-submit`` is built from (Delta jars in ``.cache/jars``)."""
    return load_config(REPO / "conf" / "local.yaml", [f"paths.root={root}"])


def rerun(root: Path, job: str, extra: list[str], *, log_path: Path) -> float:
    """``jobs/<job>.py`` through ``spark-submit`` to the end; returns its seconds."""
    t0 = time.perf_counter()
    submit(submit_cfg(root), REPO / "jobs" / f"{job}.py", [*job_args("local.yaml", root, *SETTINGS), *extra],
           log_path=log_path, timeout_s=JOB_TIMEOUT_S, master="local[2]")
    return time.perf_counter() - t0


def assert_one_row_per_key(df: DataFrame, keys: list[str]) -> None:
    assert df.groupBy(*keys).count().where("count > 1").count() == 0
    assert df.count() == df.select(*keys).distinct().count()


def restore(src: Path, dst: Path) -> None:
    """A fresh copy of ``src`` at ``dst``."""
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)


# --- Scoring -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scoring_inputs(spark, cluster_pipeline, tmp_path_factory) -> tuple[Path, Path, dt.date]:
    """(pristine root, reference root, as_of of the killed run): a copy of the session's pipeline on the
    cluster (tests/clusterpipeline.py: inputs, a champion and a first scoring run); the reference copy scored
    again as of ``as_of`` (every track's features change) without a kill."""
    base = tmp_path_factory.mktemp("faults-scoring")
    cfg = make_config(base / "pristine", *SETTINGS)
    shutil.copytree(cluster_pipeline.root, cfg.paths.root, ignore=shutil.ignore_patterns("logs"))
    as_of = last_run(spark, cfg).as_of + dt.timedelta(days=14)
    reference = base / "reference"
    restore(Path(cfg.paths.root), reference)
    run_scoring(spark, make_config(reference, *SETTINGS), as_of=as_of)
    return Path(cfg.paths.root), reference, as_of


def last_run(spark: SparkSession, cfg: Config):
    return read_table(spark, cfg, "scoring_runs").orderBy(F.desc("ended_at"), F.desc("run_id")).first()


def kill_after_commit(proc: subprocess.Popen, table: Path, *, log_path: Path, timeout_s: float) -> dict | None:
    """Poll ``table`` until the running job has committed a new version to it, then SIGKILL the job's process
    group. Returns the version seen (``None``: the job ended first)."""
    before = log_version(table)
    t0 = time.monotonic()
    while proc.poll() is None:
        version = log_version(table)
        if version != before:
            os.killpg(proc.pid, signal.SIGKILL)
            return {"version": version, "seconds": time.monotonic() - t0}
        if time.monotonic() - t0 > timeout_s:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise AssertionError(f"{timeout_s:.0f} s passed before {table.name} got a commit\n{log_tail(log_path)}")
        time.sleep(0.005)
    return None


def killed_after_commit(root: Path, args: list[str], table: Path, *, log_path: Path) -> dict | None:
    """``jobs/score.py`` through ``spark-submit --master local[2]``, killed once its MERGE into ``table`` has
    committed: what :func:`kill_after_commit` saw plus the exit status (``None``: no kill landed)."""
    proc = start_submit(submit_cfg(root), REPO / "jobs" / "score.py", args, log_path=log_path, master="local[2]")
    try:
        seen = kill_after_commit(proc, table, log_path=log_path, timeout_s=JOB_TIMEOUT_S)
    finally:
        if proc.poll() is None and seen is None:
            os.killpg(proc.pid, signal.SIGKILL)
        code = proc.wait(timeout=120)
    return None if seen is None else {**seen, "exit": code}


def test_scoring_driver_killed_inside_its_merge_then_after_its_commit_and_the_next_run_converges(
        spark, scoring_inputs, tmp_path):
    """Three runs of one scoring job on one copy (each the re-run of the one before):

    1. killed inside its MERGE: predictions readable at their previous version and rows, no run logged;
    2. killed between its ``predictions`` commit and its ``scoring_runs`` row: it rescored what the reference
       rescored (every track run 1 did not commit), reusing the features run 1 stored; its row is missing;
    3. to the end: it logs run 2 from its commit, once, with the reference run's figures, and has nothing
       left to score. The predictions are the reference's, one row per key.
    """
    pristine, reference, as_of = scoring_inputs
    root = tmp_path / "killed"
    args = [*job_args("local.yaml", root, *SETTINGS), "--as-of", as_of.isoformat()]
    inside = after = None
    for attempt in range(1, ATTEMPTS + 1):
        restore(pristine, root)
        cfg = make_config(root, *SETTINGS)
        table, runs = Path(cfg.table("predictions")), Path(cfg.table("scoring_runs"))
        before_version = table_version(spark, str(table))
        before_rows = read_table(spark, cfg, "predictions").collect()
        runs_version, runs_before = log_version(runs), read_table(spark, cfg, "scoring_runs").count()
        t0 = time.perf_counter()
        inside = killed_run(submit_cfg(root), "score", args, table=table, log_path=root / f"killed-{attempt}.log")
        if inside is None:
            continue
        print(f"scoring killed inside its MERGE on attempt {attempt} after {time.perf_counter() - t0:.1f} s: {inside}")
        # 1: killed between the MERGE's first data file and its commit
        assert inside["exit"] == -signal.SIGKILL
        assert inside["version_after"] == before_version and inside["orphans"] >= inside["new_files"] >= 1
        assert table_version(spark, str(table)) == before_version
        assertDataFrameEqual(read_table(spark, cfg, "predictions"), before_rows)
        assert read_table(spark, cfg, "scoring_runs").count() == runs_before    # logged after the MERGE only
        after = killed_after_commit(root, args, table, log_path=root / f"killed-after-{attempt}.log")
        if after is not None and log_version(runs) == runs_version:
            break
        inside = after = None
    assert inside is not None and after is not None, f"{ATTEMPTS} attempts: a run committed before a kill landed"
    print(f"scoring killed after its predictions commit on attempt {attempt}: {after}")

    # 2: committed, not logged
    assert after["exit"] == -signal.SIGKILL
    (commit,) = latest_commits(spark, str(table), 1)
    lost = json.loads(commit["userMetadata"])[RUN_KEY]["run_id"]
    assert read_table(spark, cfg, "scoring_runs").count() == runs_before
    ref_cfg = make_config(reference, *SETTINGS)
    want = read_table(spark, ref_cfg, "predictions")
    ref_run = last_run(spark, ref_cfg)
    got = read_table(spark, cfg, "predictions")
    assertDataFrameEqual(got.drop(*RUN_COLUMNS), want.drop(*RUN_COLUMNS))
    rescored = {r.track_id for r in got.where(F.col("run_id") == lost).select("track_id").collect()}
    ref_rescored = {r.track_id for r in want.where(F.col("run_id") == ref_run.run_id).select("track_id").collect()}
    assert rescored == ref_rescored and len(rescored) == ref_run.rescored > 0

    # 3: to the end
    seconds = rerun(root, "score", args[-2:], log_path=root / "rerun.log")
    print(f"re-run to the end: {seconds:.1f} s; orphan files left in predictions: {len(orphan_files(table))}")
    got = read_table(spark, cfg, "predictions")
    assert_one_row_per_key(got, ["track_id", "model_version"])
    assertDataFrameEqual(got.drop(*RUN_COLUMNS), want.drop(*RUN_COLUMNS))
    logged = read_table(spark, cfg, "scoring_runs")
    assert logged.count() == runs_before + 2
    row, rerun_row = logged.where(F.col("run_id") == lost).first(), last_run(spark, cfg)
    # run 2's row, rebuilt from its commit, has what the reference run logged (but for what only the run knew:
    # the catalog's size and the unchanged tracks); the features run 1 stored before its MERGE were current
    assert (row.rescored, row.modes, row.score_histogram, row.score_quantiles, row.as_of) == (
        ref_run.rescored, ref_run.modes, ref_run.score_histogram, ref_run.score_quantiles, as_of)
    assert row.psi == pytest.approx(ref_run.psi) and (row.tracks, row.unchanged) == (None, None)
    assert row.features_reused
    assert row.note.startswith(f"logged by run {rerun_row.run_id}: this run committed predictions version "
                               f"{after['version']}")
    assert (rerun_row.rescored, rerun_row.unchanged, rerun_row.note) == (0, ref_run.tracks, None)


# --- Ingest --------------------------------------------------------------------------------------------

INGEST_TABLES = {"catalog": ["track_id"], "engagement_events": ["event_id"], "quarantine": QUARANTINE_KEYS}
#: Raw files held back from the first ingest; the killed run and the reference ingest them (late arrivals).
HELD = {"catalog": ["catalog-update.jsonl"], "events": ["events-late-arrivals.jsonl"]}
LATER_EVENTS = "events-later.jsonl"


def hold_back(raw: Path, held: Path) -> None:
    """Move :data:`HELD` and the second half of every simulated events file from ``raw`` to ``held``."""
    for folder, names in HELD.items():
        (held / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.move(raw / folder / name, held / folder / name)
    later = []
    for path in sorted((raw / "events").glob("events-[0-9]*.jsonl")):
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(lines[:len(lines) // 2]))
        later += lines[len(lines) // 2:]
    (held / "events" / LATER_EVENTS).write_text("".join(later))


def add_held(held: Path, root: Path) -> None:
    """Copy the held-back raw files into ``root``'s raw folders."""
    shutil.copytree(held, root / "raw", dirs_exist_ok=True)


def ingest_tables(spark: SparkSession, cfg: Config) -> dict[str, DataFrame]:
    return {name: read_table(spark, cfg, name) for name in INGEST_TABLES}


@pytest.fixture(scope="module")
def ingest_inputs(spark, demo_inputs, tmp_path_factory) -> tuple[Path, Path, Path]:
    """(pristine root, held-back raw files, reference root): a demo catalog (a copy of the session's, as
    generated) ingested without its late files; the reference copy given them and ingested again, without a
    kill."""
    base = tmp_path_factory.mktemp("faults-ingest")
    cfg = make_config(base / "pristine", *SETTINGS)
    shutil.copytree(demo_inputs[0], cfg.paths.root)
    held = base / "held"
    hold_back(cfg.path(cfg.paths.raw), held)
    run_ingest(spark, cfg)
    reference = base / "reference"
    restore(Path(cfg.paths.root), reference)
    add_held(held, reference)
    run_ingest(spark, make_config(reference, *SETTINGS))
    return Path(cfg.paths.root), held, reference


def test_ingest_driver_killed_inside_its_catalog_merge_then_its_events_merge_and_the_next_run_converges(
        spark, ingest_inputs, tmp_path):
    """Three runs of one ingest job on one copy given the held-back files (each the re-run of the one before):

    1. killed inside its catalog MERGE, its first write: no table has changed (versions and rows);
    2. killed inside its events MERGE: ``engagement_events`` at its previous version and rows; the catalog
       step had finished, so the catalog and its quarantine rows are the reference's, the events' quarantine
       rows those from before;
    3. to the end: every table is the reference's, one row per key; the catalog run 2 merged is left alone
       (no rewrite, no version: ``tables.merge_upsert``).
    """
    pristine, held, reference = ingest_inputs
    root = tmp_path / "killed"
    args = job_args("local.yaml", root, *SETTINGS)
    first = second = None
    for attempt in range(1, ATTEMPTS + 1):
        restore(pristine, root)
        add_held(held, root)
        cfg = make_config(root, *SETTINGS)
        catalog, events = Path(cfg.table("catalog")), Path(cfg.table("engagement_events"))
        versions = {name: table_version(spark, cfg.table(name)) for name in INGEST_TABLES}
        before = {name: df.collect() for name, df in ingest_tables(spark, cfg).items()}
        first = killed_run(submit_cfg(root), "ingest", args, table=catalog, log_path=root / f"killed-{attempt}.log")
        if first is None:
            continue
        print(f"ingest killed inside its catalog MERGE on attempt {attempt}: {first}; versions before {versions}")
        # 1
        assert first["exit"] == -signal.SIGKILL
        assert first["version_after"] == versions["catalog"] and first["orphans"] >= first["new_files"] >= 1
        after = ingest_tables(spark, cfg)
        assert {name: table_version(spark, cfg.table(name)) for name in INGEST_TABLES} == versions
        for name in INGEST_TABLES:
            assertDataFrameEqual(after[name], before[name])
        second = killed_run(submit_cfg(root), "ingest", args, table=events,
                            log_path=root / f"killed-events-{attempt}.log")
        if second is not None:
            break
        first = None
    assert first is not None and second is not None, f"{ATTEMPTS} attempts: a MERGE committed before a kill landed"
    print(f"ingest killed inside its events MERGE on attempt {attempt}: {second}")

    # 2
    assert second["exit"] == -signal.SIGKILL
    assert second["version_after"] == versions["engagement_events"] and second["orphans"] >= second["new_files"] >= 1
    after = ingest_tables(spark, cfg)
    after_versions = {name: table_version(spark, cfg.table(name)) for name in INGEST_TABLES}
    assert after_versions["engagement_events"] == versions["engagement_events"]
    assertDataFrameEqual(after["engagement_events"], before["engagement_events"])
    ref = ingest_tables(spark, make_config(reference, *SETTINGS))
    assertDataFrameEqual(after["catalog"], ref["catalog"])
    quarantined = after["quarantine"]
    assertDataFrameEqual(quarantined.where("source = 'catalog'"), ref["quarantine"].where("source = 'catalog'"))
    assertDataFrameEqual(quarantined.where("source = 'events'"),
                         [r for r in before["quarantine"] if r["source"] == "events"])

    # 3
    seconds = rerun(root, "ingest", [], log_path=root / "rerun.log")
    rerun_versions = {name: table_version(spark, cfg.table(name)) for name in INGEST_TABLES}
    print(f"re-run to the end: {seconds:.1f} s; versions {rerun_versions}; "
          f"orphan files left in engagement_events: {len(orphan_files(events))}")
    assert rerun_versions["catalog"] == after_versions["catalog"]
    got = ingest_tables(spark, cfg)
    for name, keys in INGEST_TABLES.items():
        assert_one_row_per_key(got[name], keys)
        assertDataFrameEqual(got[name], ref[name])
    # the runs had work to do: the held-back catalog updates and events
    updated = got["catalog"].exceptAll(spark.createDataFrame(before["catalog"], got["catalog"].schema))
    assert updated.count() > 0 and got["engagement_events"].count() > len(before["engagement_events"])
