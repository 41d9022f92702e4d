"""What ``spark-submit`` ships to a cluster (``make package``), under ``dist/``:

- ``hitcast.zip``: the library (``lib/hitcast``: its modules, SQL views and ``py.typed``) for ``--py-files``.
  A wheel fails there: executors add ``--py-files`` entries to ``sys.path``, and a ``.whl`` on it raised
  "No module named ..." (measured); a zip is imported by ``zipimport``.
- ``hitcast-env.tar.gz``: the Python environment, packed by venv-pack, for
  ``--archives dist/hitcast-env.tar.gz#environment`` with ``spark.pyspark.python=./environment/bin/python``.
  venv-pack refuses a venv with editable installs (the developer's ``.venv`` installs hitcast editable), so the
  archive is packed from a venv of its own, ``.cache/pack-env``, created with the developer venv's base
  interpreter and ``pip install -r requirements.txt`` (hitcast itself travels in the zip). venv-pack does not
  pack the interpreter: ``bin/python`` stays a symlink to that base interpreter, so every machine that runs an
  executor (and, in cluster deploy mode, the driver) needs the same OS and the same Python (3.x.y) at the same
  path (or ``venv-pack --python-prefix`` to point it elsewhere). The pyspark jars and TensorFlow's C++ headers
  are left out of the archive (:data:`PACK_EXCLUDE`); pyspark's Python side stays in.
- ``hitcast-env.json``: what the archive was built from (the requirements' hash, the Python version), so
  :func:`build_packages` repacks only when ``requirements.txt`` changed.

Instead of shipping the archive with every application (each executor, and a client-mode driver, copies and
unpacks 0.7 GB into 2 GB before its first task), it can be unpacked once per node at the same absolute path
(:func:`unpack_environment`, ``jobs/cluster.py unpack --dest DIR``) and named by ``cluster.python_env``: then
``spark-submit`` ships nothing but the library zip (:mod:`hitcast.cluster.submit`).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from hitcast.config import PROJECT_ROOT, Config
from hitcast.errors import HitcastError

log = logging.getLogger(__name__)

DIST = PROJECT_ROOT / "dist"
LIBRARY_ZIP = DIST / "hitcast.zip"
ENV_ARCHIVE = DIST / "hitcast-env.tar.gz"
ENV_MANIFEST = DIST / "hitcast-env.json"
PACK_ENV = PROJECT_ROOT / ".cache" / "pack-env"
REQUIREMENTS = PROJECT_ROOT / "requirements.txt"
#: The name the archive is unpacked under in an executor's working folder (``--archives ...#environment``).
ENV_ALIAS = "environment"
#: Left out of the archive (paths under site-packages): the pyspark jars (executors' JVMs are the cluster's Spark)
#: and TensorFlow's C++ headers (for building extensions, never imported): 0.7 of 2.9 GB.
PACK_EXCLUDE = ("pyspark/jars/*", "tensorflow/include/*")
#: Files of the library that ship besides its modules.
LIBRARY_SUFFIXES = (".py", ".sql", ".typed")


@dataclass(frozen=True)
class Packages:
    """The built packages, their sizes (MB) and build times (s); ``env_reused`` when the archive was current."""

    library_zip: Path
    env_archive: Path
    zip_mb: float
    env_mb: float
    env_s: float
    env_reused: bool

    def __str__(self) -> str:
        how = "up to date" if self.env_reused else f"packed in {self.env_s:.0f} s"
        return (f"{self.library_zip.name} {self.zip_mb:.2f} MB, {self.env_archive.name} {self.env_mb:.0f} MB ({how}) "
                f"in {self.library_zip.parent}")


def build_library_zip(out: Path = LIBRARY_ZIP, *, source: Path = PROJECT_ROOT / "lib") -> Path:
    """Zip ``<source>/hitcast`` (modules, SQL views, ``py.typed``; no caches) into ``out``, paths from ``hitcast/``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".zip.tmp")
    files = sorted(p for p in (source / "hitcast").rglob("*")
                   if p.is_file() and p.suffix in LIBRARY_SUFFIXES and "__pycache__" not in p.parts)
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for path in files:
            z.write(path, path.relative_to(source))
    os.replace(tmp, out)
    log.info("%s: %d files", out, len(files))
    return out


def requirements_hash(path: Path = REQUIREMENTS) -> str:
    """SHA-256 of the requirements file (the pinned set the environment is installed from)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _venv_python(env: Path) -> Path:
    return env / "bin" / "python"


def ensure_pack_env(env: Path = PACK_ENV, *, requirements: Path = REQUIREMENTS) -> Path:
    """A venv at ``env`` with exactly ``requirements`` installed (re-created when they changed).

    It is created with the base interpreter of the running venv (``sys._base_executable``): the executors run
    the same Python.

    Raises
    ------
    HitcastError
        When ``venv`` or ``pip`` fails (the message names the command).
    """
    stamp = env / ".requirements.sha256"
    wanted = requirements_hash(requirements)
    if stamp.is_file() and stamp.read_text() == wanted and _venv_python(env).exists():
        return env
    base = getattr(sys, "_base_executable", sys.executable)
    log.info("creating the environment to pack at %s from %s (pip install -r %s)", env, base, requirements.name)
    python = str(_venv_python(env))
    for cmd in ([base, "-m", "venv", "--clear", str(env)],
                [python, "-m", "pip", "install", "-q", "--no-compile", "-r", str(requirements)]):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise HitcastError(f"{' '.join(cmd[:4])} ... failed ({done.returncode}): {done.stderr[-2000:]}")
    compile_bytecode(env)
    stamp.write_text(wanted)
    return env


def compile_bytecode(env: Path) -> None:
    """Compile every module of ``env``'s site-packages to bytecode on all cores.

    The archive carries the ``.pyc`` files so that an executor imports without compiling; pip compiles them
    one file at a time (measured: pip install 125 s with it, 54 s with ``--no-compile`` plus 30 s here on 2
    cores). A few files of some packages' test data are not valid Python 3; ``compileall`` reports them and
    they stay uncompiled, as pip leaves them.
    """
    site = next((env / "lib").glob("python*/site-packages"))
    done = subprocess.run([str(_venv_python(env)), "-m", "compileall", "-q", "-j", "0", str(site)],
                          capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise HitcastError(f"compileall {site} failed ({done.returncode}): {done.stderr[-2000:]}")


def pack_environment(out: Path = ENV_ARCHIVE, *, env: Path = PACK_ENV, manifest: Path = ENV_MANIFEST,
                     requirements: Path = REQUIREMENTS, force: bool = False) -> tuple[Path, bool]:
    """Pack the environment into ``out`` with venv-pack, unless the manifest says it is current.

    Returns
    -------
    (Path, bool)
        The archive, and whether the existing one was reused.
    """
    import venv_pack

    wanted = {"requirements_sha256": requirements_hash(requirements), "exclude": list(PACK_EXCLUDE),
              "python": platform.python_version(),
              "platform": sys.platform, "machine": platform.machine(), "alias": ENV_ALIAS}
    if not force and out.is_file() and manifest.is_file() and json.loads(manifest.read_text()) == wanted:
        log.info("%s is current (requirements unchanged)", out)
        return out, True
    ensure_pack_env(env, requirements=requirements)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.tar.gz")
    site = Path("lib") / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    venv_pack.pack(prefix=str(env), output=str(tmp), force=True, compress_level=1,
                   filters=[("exclude", str(site / name)) for name in PACK_EXCLUDE])
    os.replace(tmp, out)
    manifest.write_text(json.dumps(wanted, indent=1))
    return out, False


def build_packages(cfg: Config | None = None, *, force: bool = False) -> Packages:
    """``dist/hitcast.zip`` and ``dist/hitcast-env.tar.gz`` (repacked only when ``requirements.txt`` changed).

    Parameters
    ----------
    cfg
        Unused: the packages depend on the checkout, not on a configuration (kept for the job's signature).
    force
        Repack the environment even when it is current.
    """
    zip_path = build_library_zip()
    t0 = time.perf_counter()
    archive, reused = pack_environment(force=force)
    env_s = time.perf_counter() - t0
    packages = Packages(zip_path, archive, zip_path.stat().st_size / 1e6, archive.stat().st_size / 1e6,
                        round(env_s, 1), reused)
    log.info("%s", packages)
    return packages


#: Written into an unpacked environment: the manifest of the archive it came from.
UNPACKED_STAMP = ".hitcast-env.json"


def unpack_environment(dest: Path, *, archive: Path = ENV_ARCHIVE, manifest: Path = ENV_MANIFEST) -> tuple[Path, bool]:
    """Unpack the environment ``archive`` into the folder ``dest``, for ``cluster.python_env`` (run it on every
    node, at the same path); skipped when ``dest`` already holds the archive ``manifest`` describes.

    It is unpacked beside ``dest`` first and renamed into place, so that a folder named ``dest`` is always
    whole. ``dest/bin/python`` is then the interpreter executors run.

    Returns
    -------
    (Path, bool)
        ``dest`` (absolute), and whether the existing copy was reused.

    Raises
    ------
    HitcastError
        When the archive is missing (run ``make package``) or ``tar`` fails.
    """
    dest = Path(dest).resolve()
    if not Path(archive).is_file():
        raise HitcastError(f"{archive} does not exist: run make package")
    wanted = manifest.read_text() if manifest.is_file() else f"{archive.stat().st_size} {archive.stat().st_mtime_ns}"
    stamp = dest / UNPACKED_STAMP
    if stamp.is_file() and stamp.read_text() == wanted and _venv_python(dest).exists():
        log.info("%s already holds %s", dest, archive.name)
        return dest, True
    tmp = dest.with_name(dest.name + ".unpacking")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    t0 = time.perf_counter()
    done = subprocess.run(["tar", "-xzf", str(archive), "-C", str(tmp)], capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise HitcastError(f"tar -xzf {archive} -C {tmp} failed ({done.returncode}): {done.stderr[-2000:]}")
    (tmp / UNPACKED_STAMP).write_text(wanted)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    log.info("unpacked %s into %s in %.1f s", archive.name, dest, time.perf_counter() - t0)
    return dest, False
