"""The ``spark-submit`` command line, with the shipped environment (``--archives``) and with one installed on
the nodes (``cluster.python_env``); unpacking the environment once. No cluster, no Spark session."""
from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from helpers import REPO
from hitcast.cluster.package import UNPACKED_STAMP, unpack_environment
from hitcast.cluster.submit import submit_command
from hitcast.config import load_config
from hitcast.errors import ConfigError, HitcastError
from hitcast.spark import delta_jar_files, spark_home

DRIVER_PYTHON = "/usr/bin/python3"


@pytest.fixture
def packages(tmp_path: Path) -> tuple[Path, Path]:
    """(archive, library zip): empty stand-ins, for the command line only."""
    archive, library = tmp_path / "hitcast-env.tar.gz", tmp_path / "hitcast.zip"
    archive.write_bytes(b"")
    library.write_bytes(b"")
    return archive, library


def expected(cfg, library: Path, executor_python: str, ship: list[str]) -> list[str]:
    jars = ",".join(str(j) for j in delta_jar_files(cfg))
    return [str(spark_home() / "bin" / "spark-submit"), "--master", "spark://127.0.0.1:7177", "--deploy-mode",
            "client", *ship, "--py-files", str(library), "--jars", jars, "--conf",
            f"spark.pyspark.python={executor_python}", "--conf", f"spark.pyspark.driver.python={DRIVER_PYTHON}",
            "jobs/score.py", "--conf", "conf/standalone.yaml"]


def test_by_default_every_application_ships_the_archive(packages):
    archive, library = packages
    cfg = load_config(REPO / "conf" / "standalone.yaml")
    assert cfg.cluster.python_env == ""
    cmd = submit_command(cfg, "jobs/score.py", ["--conf", "conf/standalone.yaml"], archive=archive, library=library,
                         driver_python=DRIVER_PYTHON)
    assert cmd == expected(cfg, library, "./environment/bin/python", ["--archives", f"{archive}#environment"])


def test_an_installed_environment_ships_nothing(packages, tmp_path):
    archive, library = packages
    env = tmp_path / "opt" / "hitcast-env"
    cfg = load_config(REPO / "conf" / "standalone.yaml", [f"cluster.python_env={env}"])
    args = ["--conf", "conf/standalone.yaml"]
    cmd = submit_command(cfg, "jobs/score.py", args, archive=tmp_path / "absent.tar.gz", library=library,
                         driver_python=DRIVER_PYTHON)
    assert cmd == expected(cfg, library, f"{env}/bin/python", [])
    # python_env="" ships the archive whatever the configuration says (and needs it)
    shipped = submit_command(cfg, "jobs/score.py", args, archive=archive, library=library,
                             driver_python=DRIVER_PYTHON, python_env="")
    assert shipped == expected(cfg, library, "./environment/bin/python", ["--archives", f"{archive}#environment"])
    with pytest.raises(HitcastError, match="absent.tar.gz does not exist: run make package"):
        submit_command(cfg, "jobs/score.py", args, archive=tmp_path / "absent.tar.gz", library=library,
                       python_env="")


def test_a_relative_installed_environment_is_refused(packages):
    archive, library = packages
    cfg = load_config(REPO / "conf" / "standalone.yaml", ["cluster.python_env=hitcast-env"])
    with pytest.raises(ConfigError, match="cluster.python_env must be an absolute path, not 'hitcast-env'"):
        submit_command(cfg, "jobs/score.py", archive=archive, library=library)


def make_archive(path: Path, content: bytes) -> Path:
    src = path.parent / "src"
    (src / "bin").mkdir(parents=True, exist_ok=True)
    (src / "bin" / "python").write_bytes(content)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(src, arcname=".")
    return path


def test_the_environment_is_unpacked_once_and_again_when_the_archive_changes(tmp_path):
    archive, manifest = make_archive(tmp_path / "env.tar.gz", b"one"), tmp_path / "env.json"
    manifest.write_text('{"requirements_sha256": "1"}')
    dest = tmp_path / "nodes" / "hitcast-env"
    assert unpack_environment(dest, archive=archive, manifest=manifest) == (dest, False)
    assert (dest / "bin" / "python").read_bytes() == b"one"
    assert (dest / UNPACKED_STAMP).read_text() == manifest.read_text()
    assert unpack_environment(dest, archive=archive, manifest=manifest) == (dest, True)
    make_archive(archive, b"two")
    manifest.write_text('{"requirements_sha256": "2"}')
    assert unpack_environment(dest, archive=archive, manifest=manifest) == (dest, False)
    assert (dest / "bin" / "python").read_bytes() == b"two"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["hitcast-env"]
    with pytest.raises(HitcastError, match="absent.tar.gz does not exist: run make package"):
        unpack_environment(dest, archive=tmp_path / "absent.tar.gz", manifest=manifest)
