# hitcast: two commands for a new user, `make demo` and `make test`. Everything else is a building block.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
PYTHON := $(abspath $(VENV))/bin/python
JARS := .cache/jars
# The Delta jars are the release of the pinned delta-spark Python package (named once, in requirements.txt).
DELTA_VERSION := $(shell sed -n 's/^delta-spark==//p' requirements.txt)
CONF ?= conf/local.yaml
# Executors and Python workers must run the venv's interpreter.
export PYSPARK_PYTHON := $(PYTHON)
export PYSPARK_DRIVER_PYTHON := $(PYTHON)
export TF_CPP_MIN_LOG_LEVEL := 2
JOB = $(PYTHON) jobs

.PHONY: help setup venv jars demo daily hit-predictor test test-all bench bench-spectrograms bench-training bench-features \
        bench-seeds bench-scoring bench-sql bench-cluster bench-daily package clean clean-data test-cluster mlflow-ui

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

# pip compiles every module to bytecode one file at a time (125 s for this set); installing without that and
# compiling with compileall on every core takes 54 s + 30 s on 2 cores. The bytecode must be there: with
# PYTHONDONTWRITEBYTECODE set, a process would otherwise compile TensorFlow, pandas, ... again at every import.
# (compileall exits 1 for the few test-data files in some packages that are not Python 3, as pip skips them.)
SITE_PACKAGES = $(VENV)/lib/python*/site-packages
venv: $(VENV)/.installed  ## create .venv with the pinned dependencies and hitcast (editable)
$(VENV)/.installed: requirements.txt setup.py
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q --no-compile -r requirements.txt
	$(PYTHON) -m compileall -q -j 0 $(SITE_PACKAGES) > /dev/null 2>&1; test $$? -le 1
	$(PYTHON) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

jars: $(JARS)/.done  ## copy the Delta Lake jars from Maven Central into .cache/jars (once)
$(JARS)/.done: requirements.txt
	mkdir -p $(JARS)
	mvn -q -B dependency:copy -Dartifact=io.delta:delta-spark_2.13:$(DELTA_VERSION) -DoutputDirectory=$(JARS)
	mvn -q -B dependency:copy -Dartifact=io.delta:delta-storage:$(DELTA_VERSION) -DoutputDirectory=$(JARS)
	touch $@

setup: venv jars  ## venv + jars

demo: setup  ## generate the demo catalog and run every stage on local[*]
	$(JOB)/generate_demo.py --conf $(CONF)
	$(JOB)/ingest.py --conf $(CONF)
	$(JOB)/features.py --conf $(CONF)
	$(JOB)/spectrograms.py --conf $(CONF)
	$(JOB)/train.py --conf $(CONF)
	$(JOB)/evaluate.py --conf $(CONF)
	$(JOB)/promote.py --conf $(CONF)
	$(JOB)/score.py --conf $(CONF)
	$(JOB)/summary.py --conf $(CONF)

AS_OF ?=
daily: setup  ## the daily run in one Spark application (ingest, spectrograms, aggregates, features, scoring); AS_OF=YYYY-MM-DD
	$(JOB)/daily.py --conf $(CONF) $(if $(AS_OF),--as-of $(AS_OF))

hit-predictor: setup  ## the structured branch on the Spotify hit-predictor CSVs (ingest, then evaluate)
	$(JOB)/ingest.py --conf conf/spotify-hit-predictor.yaml
	$(JOB)/evaluate.py --labelled --conf conf/spotify-hit-predictor.yaml

test: setup  ## the test suite (real Spark local[2], Delta, TensorFlow; slow and cluster checks excluded)
	$(PYTHON) -m pytest -q -m "not slow and not cluster" --durations=20 tests

test-cluster: setup package  ## the pipeline through spark-submit on a standalone cluster on free ports, fault tests
	$(PYTHON) -m pytest -q -s -m cluster --durations=0 tests

test-all: setup package  ## every test, including the slow and the cluster ones
	$(PYTHON) -m pytest -q tests

package: setup  ## dist/hitcast.zip (--py-files; a .whl fails on executors) + dist/hitcast-env.tar.gz (venv-pack, --archives)
	$(JOB)/cluster.py package

.PHONY: cluster-up cluster-down cluster-status test-cluster
CLUSTER_CONF ?= conf/standalone.yaml
cluster-up: setup  ## a Spark standalone master + two 1-core workers on 127.0.0.1, ports from conf/standalone.yaml
	$(JOB)/cluster.py up --conf $(CLUSTER_CONF)

cluster-down:  ## stop the standalone cluster (every process it started)
	$(JOB)/cluster.py down --conf $(CLUSTER_CONF)

cluster-status:  ## is the standalone cluster up, and how many workers are ALIVE
	$(JOB)/cluster.py status --conf $(CLUSTER_CONF)

bench: bench-spectrograms bench-training bench-features bench-scoring  ## every benchmark

bench-spectrograms: setup  ## spectrogram job vs plain librosa loop vs decode+STFT floor
	$(PYTHON) bench/bench_spectrograms.py --conf $(CONF)

bench-training: setup  ## Petastorm-fed training vs in-memory NumPy; 1 vs 2 workers
	$(PYTHON) bench/bench_training.py --conf $(CONF)

bench-seeds: setup  ## demo evaluation over several training seeds (after make demo)
	$(PYTHON) bench/bench_seeds.py --conf $(CONF)

bench-features: setup  ## features job on a generated 100,000-track catalog
	$(PYTHON) bench/bench_features.py --conf $(CONF)

# DuckDB is the benchmark's peer only: installed here, never a dependency of hitcast.
DUCKDB := duckdb==1.4.3
bench-daily: setup  ## features for 17 cutoffs vs DuckDB, and a simulated week of daily runs (on the bench-features catalog)
	$(PYTHON) -c "import duckdb" 2>/dev/null || $(PYTHON) -m pip install -q $(DUCKDB)
	$(PYTHON) bench/bench_daily.py --conf $(CONF)

bench-cluster: setup package  ## per-stage rates on the standalone cluster, 1 vs 2 executors (conf/standalone.yaml)
	$(PYTHON) bench/bench_cluster.py --conf $(CLUSTER_CONF)

bench-sql: setup  ## the analysts' views through the SQL endpoint vs in-process Spark (after make demo)
	$(PYTHON) bench/bench_sql.py --conf $(CONF)

bench-scoring: setup  ## scoring stage on local[2] vs single-process inference, reasons, incremental (after make demo)
	$(PYTHON) bench/bench_scoring.py --conf $(CONF)

.PHONY: sql-server sql-server-stop
mlflow-ui: setup  ## the MLflow UI on 127.0.0.1:5000 (runs, curves, the registered model and its champion alias); after make demo
	$(JOB)/mlflow_ui.py --conf $(CONF)

sql-server: setup  ## SQL endpoint for analysts (Thrift JDBC/ODBC on 127.0.0.1:10000): tables + views; after make demo
	$(JOB)/sql_server.py start --conf $(CONF)

sql-server-stop:  ## stop the SQL endpoint
	$(JOB)/sql_server.py stop --conf $(CONF)

clean-data:  ## remove generated data, tables, models and reports
	rm -rf data

clean: clean-data  ## also remove the venv and the jar cache
	rm -rf $(VENV) .cache dist
