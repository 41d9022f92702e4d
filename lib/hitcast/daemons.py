"""Background processes hitcast starts and stops: the standalone cluster's master and workers
(:mod:`hitcast.cluster.standalone`) and the SQL endpoint (:mod:`hitcast.sql.server`).

Each runs in its own session, so its process group holds it and everything it starts (a worker's executors, a
server's JVM); a JSON PID file records it for the commands that stop it later, from another process. Stopping
is by process group: SIGTERM, then SIGKILL for whatever is left after a timeout, and done only when no live
member of the group is left (Linux ``/proc``). A process this interpreter started is reaped as it ends, so it
does not linger as a zombie.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Processes this interpreter started, by PID (so that stopping them also reaps them).
_CHILDREN: dict[int, subprocess.Popen] = {}


def spawn(command: Sequence[str], *, cwd: Path, env: Mapping[str, str], log_path: Path) -> subprocess.Popen:
    """Start ``command`` in a new session (its own process group), stdin closed, stdout and stderr appended
    to ``log_path``."""
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(list(command), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    _CHILDREN[proc.pid] = proc
    return proc


def reap() -> None:
    """Collect the processes this interpreter started that have ended."""
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            _CHILDREN.pop(pid, None)


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (ended, not yet reaped by its parent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def group_members(pgids: set[int]) -> list[int]:
    """PIDs of the live (not zombie) processes in the process groups ``pgids`` (Linux ``/proc``)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().split(") ")[-1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) in pgids:
            members.append(int(entry.name))
    return members


def stop_groups(leaders: Sequence[int], *, timeout_s: float, what: str) -> list[int]:
    """SIGTERM the process groups ``leaders`` lead (in that order), wait up to ``timeout_s`` for every member
    to end, then SIGKILL what is left and wait again.

    Returns
    -------
    list of int
        PIDs still alive afterwards (none, normally); the caller decides whether that is an error.
    """
    groups = set(leaders)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in leaders:
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + timeout_s
        while group_members(groups) and time.monotonic() < deadline:
            reap()
            time.sleep(0.2)
        reap()
        if not group_members(groups):
            return []
        log.warning("%s processes %s did not stop on %s", what, group_members(groups), sig.name)
    return group_members(groups)


def write_pid_file(path: Path, info: Any) -> None:
    """Record the dataclass ``info`` as JSON at ``path`` (replaced atomically)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(info), indent=1))
    os.replace(tmp, path)


def read_pid_file(path: Path, build: Callable[[dict], T]) -> T | None:
    """``build(<the JSON object at path>)``, or ``None`` when there is no file."""
    if not path.is_file():
        return None
    return build(json.loads(path.read_text()))


def log_tail(path: str | Path, lines: int = 12) -> str:
    """The last ``lines`` lines of a daemon's log (``(no log)`` when it cannot be read)."""
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
