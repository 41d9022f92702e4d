"""The ``spark-submit`` command line of a hitcast job on the standalone cluster (client deploy mode).

The driver runs here with the developer's interpreter; executors run the shipped environment::

    spark-submit --master spark://127.0.0.1:7177 --deploy-mode client \\
      --archives dist/hitcast-env.tar.gz#environment --py-files dist/hitcast.zip \\
      --jars .cache/jars/delta-spark_2.13-<v>.jar,.cache/jars/delta-storage-<v>.jar \\
      --conf spark.pyspark.python=./environment/bin/python \\
      --conf spark.pyspark.driver.python=.venv/bin/python \\
      jobs/score.py --conf conf/standalone.yaml

``spark.pyspark.python`` alone would also name the driver's interpreter; in client mode the driver has no
``./environment``, hence ``spark.pyspark.driver.python`` (in YARN and Kubernetes cluster mode the driver runs in a
container with the archive, and only ``spark.pyspark.python`` is set: README).

With ``cluster.python_env`` set (the environment already unpacked at that absolute path on every node,
:func:`hitcast.cluster.package.unpack_environment`), there is no ``--archives``: executors run
``<python_env>/bin/python`` and no application copies or unpacks the 0.7 GB archive.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from hitcast.cluster.package import ENV_ALIAS, ENV_ARCHIVE, LIBRARY_ZIP
from hitcast.cluster.standalone import master_url
from hitcast.config import Config
from hitcast.errors import ConfigError, HitcastError
from hitcast.spark import delta_jar_files, spark_home


def executor_python(cfg: Config, python_env: str | None = None) -> tuple[str, list[str]]:
    """(``spark.pyspark.python``, what to ship for it): ``<python_env>/bin/python`` and nothing when an
    environment is installed on the nodes (``python_env``, else ``cluster.python_env``), else the shipped
    archive's ``./environment/bin/python`` and ``--archives``.

    Raises
    ------
    ConfigError
        When the installed environment's path is not absolute (executors start in folders of their own).
    """
    installed = cfg.cluster.python_env if python_env is None else python_env
    if not installed:
        return f"./{ENV_ALIAS}/bin/python", ["--archives", f"{ENV_ARCHIVE}#{ENV_ALIAS}"]
    if not Path(installed).is_absolute():
        raise ConfigError(f"configuration key cluster.python_env must be an absolute path, not {installed!r}")
    return str(Path(installed) / "bin" / "python"), []


def submit_command(cfg: Config, job: str | Path, job_args: Sequence[str] = (), *, archive: Path = ENV_ARCHIVE,
                   library: Path = LIBRARY_ZIP, driver_python: str | None = None,
                   master: str | None = None, spark_conf: dict[str, str] | None = None,
                   python_env: str | None = None) -> list[str]:
    """``spark-submit`` of ``job`` (a ``jobs/*.py`` file) with ``job_args`` to this configuration's cluster.

    ``spark_conf`` adds ``--conf key=value`` settings (e.g. ``spark.cores.max``).
    ``master='local[2]'`` (or any ``local...``) submits to an in-process master instead: nothing is shipped, the
    driver (and its executor threads) run ``driver_python``; the driver is still the ``spark-submit`` process.
    ``python_env`` overrides ``cluster.python_env`` (``""``: ship ``archive``, whatever the configuration says).

    Raises
    ------
    HitcastError
        When ``make package`` has not built the archive (when it is shipped) or the zip, or the Delta jars
        are missing.
    ConfigError
        When the installed environment's path is not absolute.
    """
    jars = ",".join(str(j) for j in delta_jar_files(cfg))
    python = driver_python or sys.executable
    head = [str(spark_home() / "bin" / "spark-submit")]
    for key, value in (spark_conf or {}).items():
        head += ["--conf", f"{key}={value}"]
    if master is not None and master.startswith("local"):
        return [*head, "--master", master, "--jars", jars, "--conf", f"spark.pyspark.python={python}", str(job),
                *job_args]
    executor_py, ship = executor_python(cfg, python_env)
    if ship:
        ship = ["--archives", f"{archive}#{ENV_ALIAS}"]
    for path in (archive, library) if ship else (library,):
        if not Path(path).is_file():
            raise HitcastError(f"{path} does not exist: run make package")
    return [*head, "--master", master or master_url(cfg), "--deploy-mode", "client",
            *ship, "--py-files", str(library), "--jars", jars,
            "--conf", f"spark.pyspark.python={executor_py}",
            "--conf", f"spark.pyspark.driver.python={python}",
            str(job), *job_args]


def submit_env(cfg: Config, scratch: Path | None = None) -> dict[str, str]:
    """The environment of ``spark-submit``: loopback (``SPARK_LOCAL_IP``), and no developer ``PYSPARK_PYTHON``
    (the command's ``spark.pyspark.*`` settings decide).

    ``scratch`` (created) becomes the driver's temporary folder: ``java.io.tmpdir`` of the ``spark-submit`` JVM,
    its ``SPARK_LOCAL_DIRS`` and the Python driver's ``TMPDIR``. In client mode the driver copies and unpacks
    ``--archives`` there too (2-3 GB for the environment): Spark deletes it when the driver exits, but a driver
    that is killed leaves it behind, in ``/tmp`` by default.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")}
    env["SPARK_LOCAL_IP"] = cfg.cluster.host
    env["SPARK_HOME"] = str(spark_home())
    if scratch is not None:
        scratch = Path(scratch).resolve()
        scratch.mkdir(parents=True, exist_ok=True)
        env["SPARK_LOCAL_DIRS"] = env["TMPDIR"] = str(scratch)
        env["SPARK_SUBMIT_OPTS"] = f"{env.get('SPARK_SUBMIT_OPTS', '')} -Djava.io.tmpdir={scratch}".strip()
    return env


def start_submit(cfg: Config, job: str | Path, job_args: Sequence[str] = (), *, log_path: Path,
                 scratch: Path | None = None, **options) -> subprocess.Popen:
    """Start :func:`submit_command` in the background, in a session of its own (so that the ``spark-submit`` JVM
    and the Python driver it runs can be stopped together with ``os.killpg``), its output to ``log_path``; the
    driver's temporary files in ``scratch`` (:func:`submit_env`)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as out:
        return subprocess.Popen(submit_command(cfg, job, job_args, **options), env=submit_env(cfg, scratch),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def log_tail(log_path: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a job's log."""
    return "\n".join(Path(log_path).read_text(errors="replace").splitlines()[-lines:])


def submit(cfg: Config, job: str | Path, job_args: Sequence[str] = (), *, log_path: Path,
           timeout_s: float = 1800, **options) -> int:
    """Run :func:`submit_command` to the end, its output to ``log_path``; returns the job's exit status (0).

    Raises
    ------
    HitcastError
        When the job exits non-zero (with the end of its log) or runs longer than ``timeout_s`` (it is killed).
    """
    proc = start_submit(cfg, job, job_args, log_path=log_path, **options)
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise HitcastError(f"spark-submit {Path(job).name} ran longer than {timeout_s:.0f} s and was killed; "
                           f"{log_path} ends:\n{log_tail(log_path)}") from None
    if code != 0:
        raise HitcastError(f"spark-submit {Path(job).name} exited with {code}; {log_path} ends:\n{log_tail(log_path)}")
    return code
