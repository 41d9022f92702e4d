"""The pipeline through ``spark-submit`` on a real Spark standalone cluster (a master and two one-core workers
on this machine, on free ports), executors running the environment ``make package`` packed and the library zip
(``--py-files``); and what happens when a worker dies in the middle of a job.

The environment reaches the executors both ways a deployment can choose: the spectrogram job ships the archive
(``--archives``, each executor unpacks it), every other job runs the copy unpacked once for the cluster
(``cluster.python_env``: nothing shipped).

One generated catalog, two copies: one goes through ingest, features, spectrograms, training (two barrier
workers, one per executor) and scoring as ``spark-submit`` jobs on the session's cluster (the session's
``cluster_pipeline``, tests/clusterpipeline.py), the other through the data stages in-process on local[2]
(``demo_inputs``, shared with the other cluster modules). Every data table
must hold the same rows; the cluster's scores must be its own model bundle's output for the same inputs.

The training job is run the way a lost machine makes an operator run it: worker 1 (its JVM, its executor, the
Python worker and the TensorFlow worker under it) is SIGKILLed once the chief has written the checkpoint of
epoch 1. The barrier stage cannot recover: the job must exit non-zero and say which epoch its last checkpoint
holds, where, and that a re-run resumes from it. Worker 1 is started again and the same command re-run: it must
log that it resumes from that checkpoint and register the version with every epoch's history; that version is
the pipeline's model. (That a resumed run equals a straight one bit for bit is shown in-process, in
tests/test_training_checkpoint.py: two fresh jobs on the cluster already differ at epoch 1.)

Then worker 1 is SIGKILLed while the spectrogram job runs, and again while the scoring job runs: each job
finishes on the other worker, and its table holds exactly the rows of the run without the kill. Last, the daily
job (jobs/daily.py) takes in a new day on a copy of the pipeline's data.

Marked ``cluster``: ``make test-cluster`` runs it alone; ``make test`` runs it too.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, functions as F
from pyspark.testing import assertDataFrameEqual

from clusterfix import RUN_COLUMNS, application_executors, executor_logs, job_args, kill_worker_during, tasks_started
from clusterpipeline import EPOCHS, SETTINGS, SHIPPED_JOB, SUBMIT_TIMEOUT_S, Pipeline, run_job
from helpers import REPO, make_config
from hitcast.cluster.package import ENV_ALIAS, ENV_ARCHIVE
from hitcast.features.examples import features_as_of
from hitcast.model.bundle import load_bundle
from hitcast.model.store import version_dir
from hitcast.scoring.inputs import scoring_inputs
from hitcast.tables import read_table

pytestmark = pytest.mark.cluster

FAILED = re.compile(r"training of (\S+) failed: (.*)\. the last checkpoint holds epoch (\d+) at (\S+); "
                    r"re-running the same command resumes from it")
#: Tables written by the data stages, compared row for row between the cluster and local[2].
DATA_TABLES = ("catalog", "engagement_events", "quarantine", "training_examples", "spectrograms")
#: Columns that say when a row was written, not what it holds.
WRITE_TIME_COLUMNS = ("ingested_at", "computed_at", *RUN_COLUMNS)


def comparable(df: DataFrame, root: Path) -> DataFrame:
    """``df`` without write-time columns, with the data root in string columns (source files) replaced by
    ``<root>``, so that two copies of a pipeline under different roots can be compared row for row."""
    df = df.drop(*[c for c in WRITE_TIME_COLUMNS if c in df.columns])
    return df.select(*[F.regexp_replace(c, str(root), "<root>").alias(c) if t == "string" else F.col(c)
                       for c, t in df.dtypes])


@pytest.fixture(scope="module")
def cluster(session_cluster):
    """The session's standalone cluster (``clusterfix.Cluster``)."""
    return session_cluster


@pytest.fixture(scope="module")
def pipeline(cluster_pipeline) -> Pipeline:
    """The session's pipeline through ``spark-submit`` (tests/clusterpipeline.py; read-only: copy its root)."""
    return cluster_pipeline


@pytest.fixture(scope="module")
def roots(pipeline) -> tuple[Path, Path]:
    """(cluster root, local root): one generated catalog through the jobs on the cluster, and through the data
    stages on local[2] (the session's ``demo_inputs``); both read-only."""
    return pipeline.root, pipeline.local_root


@pytest.mark.parametrize("table", DATA_TABLES)
def test_each_data_table_on_the_cluster_holds_the_rows_of_local(spark, roots, pipeline, table):
    cluster_root, local_root = roots
    on_cluster = read_table(spark, make_config(cluster_root, *SETTINGS), table)
    on_local = read_table(spark, make_config(local_root, *SETTINGS), table)
    assert on_local.count() > 0
    assertDataFrameEqual(comparable(on_cluster, cluster_root), comparable(on_local, local_root))


def unpacking(executor: Path) -> list[str]:
    """The lines of an executor's log that say it unpacked an archive."""
    return [line for line in (executor / "stderr").read_text(errors="replace").splitlines()
            if "Unpacking an archive" in line]


def test_executors_ran_the_shipped_environment(roots, pipeline, cluster):
    executors = {job: application_executors(cluster.cluster, app) for job, (_, app) in pipeline.runs.items()}
    # one executor per worker for each of the five applications
    assert all(len(found) == 2 and {p.parts[-3] for p in found} == {"worker-0", "worker-1"}
               for found in executors.values()), executors
    # the shipping job's executors each unpacked the archive as ./environment (whose bin/python ran its tasks:
    # spark.pyspark.python); the unpacked copies were deleted once the application ended
    # (clusterfix.drop_ended_environments)
    shipped = {p: unpacking(p) for p in executors[SHIPPED_JOB]}
    assert all(len(lines) == 1 and ENV_ARCHIVE.name in lines[0] and lines[0].rstrip().endswith(f"/{ENV_ALIAS}")
               for lines in shipped.values()), shipped
    assert not any((p / ENV_ALIAS).exists() for p in shipped)
    # the other jobs' executors unpacked nothing: they ran the environment installed for the cluster
    installed = [p for job, found in executors.items() if job != SHIPPED_JOB for p in found]
    assert len(installed) == 8 and not any(unpacking(p) or (p / ENV_ALIAS).exists() for p in installed)
    assert (cluster.python_env / "bin" / "python").exists()


def test_training_ran_two_barrier_workers_one_per_executor(spark, roots, pipeline, cluster):
    cluster_root, _ = roots
    models = read_table(spark, make_config(cluster_root, *SETTINGS), "models").collect()
    assert [(m.variant, m.workers) for m in models] == [("fused", 2)]
    # a barrier task logs its allGather ("... has entered the global sync") in its executor's log: the training
    # application's executor on each of the two workers ran one, no other application of the pipeline did
    apps = {app for _, app in pipeline.runs.values()}
    synced = {worker: {log.parts[-3] for log in executor_logs(cluster.cluster, worker)
                       if log.parts[-3] in apps and "has entered the global sync" in log.read_text(errors="replace")}
              for worker in (0, 1)}
    assert synced[0] == synced[1] == {pipeline.runs["train.py"][1]}, synced


def test_a_lost_training_worker_failed_the_job_and_the_rerun_resumed_to_the_same_model(spark, roots, pipeline,
                                                                                      cluster):
    cluster_root, _ = roots
    cfg = make_config(cluster_root, *SETTINGS)
    lost = pipeline.lost
    assert lost.code != 0, lost.log[-3000:]
    found = FAILED.search(lost.log)
    assert found, lost.log[-3000:]
    version, cause, epoch, where = found.group(1), found.group(2), int(found.group(3)), Path(found.group(4))
    print(f"failed run: exit {lost.code}, last checkpoint epoch {epoch}; cause: {cause[:300]}")
    # both TensorFlow workers ran the environment installed for the cluster (cluster.python_env): nothing shipped
    assert sorted(lost.seen.values()) == [str(cluster.python_env / "bin" / "python")] * 2, lost.seen
    assert 1 <= epoch < EPOCHS
    assert where == version_dir(cfg, version) / "checkpoints" / f"epoch-{epoch:04d}"
    # the re-run resumed from that checkpoint and registered the version with every epoch's history
    resumed_log = (cluster_root / "logs" / "train.py.log").read_text(errors="replace")
    line = re.search(rf"resuming {re.escape(version)} from the checkpoint of epoch (\d+) \((\S+)\)", resumed_log)
    assert line, resumed_log[-3000:]
    (row,) = read_table(spark, cfg, "models").collect()
    resumed = json.loads(row.metrics)
    assert row.model_version == version
    assert resumed["resumed_from_epoch"] == int(line.group(1)) >= epoch
    assert len(set(resumed["worker_checksums"])) == 1
    assert [h["epoch"] for h in resumed["history"]] == list(range(1, EPOCHS + 1))
    assert not (Path(row.path) / "checkpoints").exists()


def test_cluster_scores_are_the_bundles_output_for_the_same_inputs(spark, roots, pipeline):
    cluster_root, _ = roots
    cfg = make_config(cluster_root, *SETTINGS)
    stored = read_table(spark, cfg, "predictions").toPandas().sort_values("track_id").reset_index(drop=True)
    assert stored["model_version"].nunique() == 1 and len(stored) == 60
    as_of = stored["as_of"].iloc[0]
    features = features_as_of(read_table(spark, cfg, "catalog"), read_table(spark, cfg, "engagement_daily"),
                              as_of=as_of, cfg=cfg)
    inputs = scoring_inputs(features, read_table(spark, cfg, "spectrograms")).toPandas()
    scores = load_bundle(version_dir(cfg, stored["model_version"].iloc[0])).predict_pandas(inputs)
    expected = dict(zip(inputs["track_id"], scores["hit_probability"]))
    assert stored["hit_probability"].tolist() == pytest.approx([expected[t] for t in stored["track_id"]],
                                                               rel=1e-6, abs=1e-5)
    assert stored["hit_probability"].nunique() > 30


def killed_midway(cluster, job: str, root: Path, *extra: str) -> str:
    """Submit ``job`` (data under ``root``), SIGKILL worker 1 once its executor runs a task, let the job finish
    on worker 0, start worker 1 again. Returns the driver's log."""
    earlier = set(executor_logs(cluster.cluster, 1))            # other applications' executors
    run = kill_worker_during(
        cluster, REPO / "jobs" / job, job_args("standalone.yaml", root, *cluster.cluster_overrides, *SETTINGS)
        + list(extra), log_path=root / "logs" / f"{job}-killed.log", timeout_s=SUBMIT_TIMEOUT_S,
        when=lambda: tasks_started(cluster.cluster, 1, known=earlier) > 0, what="worker 1's executor ran a task")
    assert run.code == 0, run.log[-3000:]
    return run.log


def fresh_copy(src: Path, dest: Path, drop: tuple[str, ...]) -> Path:
    """A copy of a pipeline root without the tables ``drop`` (and the logs)."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("logs"))
    for table in drop:
        shutil.rmtree(dest / "warehouse" / table)
    return dest


def test_a_worker_killed_during_the_spectrogram_job(spark, roots, pipeline, cluster, tmp_path):
    cluster_root, _ = roots
    root = fresh_copy(cluster_root, tmp_path / "root", ("spectrograms",))
    driver_log = killed_midway(cluster, "spectrograms.py", root)
    assert "Lost executor" in driver_log or "lost worker" in driver_log.lower(), driver_log[-3000:]
    after = read_table(spark, make_config(root, *SETTINGS), "spectrograms")
    assert after.groupBy("track_id").count().where("count > 1").count() == 0
    before = read_table(spark, make_config(cluster_root, *SETTINGS), "spectrograms")
    assertDataFrameEqual(comparable(after, root), comparable(before, cluster_root))


def test_a_worker_killed_during_the_scoring_job(spark, roots, pipeline, cluster, tmp_path):
    cluster_root, _ = roots
    root = fresh_copy(cluster_root, tmp_path / "root", ("predictions", "scoring_runs"))
    driver_log = killed_midway(cluster, "score.py", root)
    assert "Lost executor" in driver_log or "lost worker" in driver_log.lower(), driver_log[-3000:]
    after = read_table(spark, make_config(root, *SETTINGS), "predictions")
    assert after.groupBy("track_id", "model_version").count().where("count > 1").count() == 0
    before = read_table(spark, make_config(cluster_root, *SETTINGS), "predictions")
    assertDataFrameEqual(after.drop(*RUN_COLUMNS), before.drop(*RUN_COLUMNS))


def test_the_daily_run_through_spark_submit(spark, roots, pipeline, cluster, tmp_path):
    """jobs/daily.py as an operator schedules it: one application on the cluster takes in a new day's event file
    and scores the champion as of the next day; its features are what the library computes from the same tables."""
    cluster_root, _ = roots
    root = fresh_copy(cluster_root, tmp_path / "root", ())
    cfg = make_config(root, *SETTINGS)
    day = read_table(spark, cfg, "engagement_daily").agg(F.max("event_date")).first()[0] + dt.timedelta(days=1)
    as_of = day + dt.timedelta(days=1)
    tracks = sorted(r.track_id for r in read_table(spark, cfg, "catalog").orderBy("track_id").limit(2).collect())
    (root / "raw" / "events" / f"day-{day}.jsonl").write_text("".join(
        json.dumps({"event_id": f"day-{k}", "user_id": f"u-day-{k}", "track_id": t, "event_type": "play",
                    "event_time": f"{day}T1{k}:00:00Z", "ms_played": 100000}) + "\n"
        for k, t in enumerate(tracks * 2)))
    run_job(cluster, "daily.py", root, "--as-of", str(as_of), name="daily")
    log = (root / "logs" / "daily.log").read_text(errors="replace")
    assert f"daily run as of {as_of}: " in log and "1 new event files, 4 events added" in log, log[-3000:]
    days = read_table(spark, cfg, "engagement_daily").where(F.col("event_date") == F.lit(day))
    assert sorted((r.track_id, r.plays, r.events) for r in days.collect()) == [(t, 2, 2) for t in tracks]
    (run,) = read_table(spark, cfg, "scoring_runs").where(F.col("as_of") == F.lit(as_of)).collect()
    champion = read_table(spark, cfg, "models").where("role = 'champion'").first().model_version
    assert run.model_version == champion and run.rescored >= len(tracks)
    stored = read_table(spark, cfg, "scoring_features").where(F.col("cutoff") == F.lit(as_of))
    want = features_as_of(read_table(spark, cfg, "catalog"), read_table(spark, cfg, "engagement_daily"),
                          as_of=as_of, cfg=cfg)
    assertDataFrameEqual(stored.select(*want.columns), want, rtol=0, atol=0)
    scored = {r.track_id for r in read_table(spark, cfg, "predictions").where(F.col("run_id") == run.run_id).collect()}
    assert set(tracks) <= scored
