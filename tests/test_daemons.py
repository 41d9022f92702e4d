"""hitcast.daemons: the process-group handling the standalone cluster and the SQL endpoint share, on real
processes (``sh`` and ``sleep``; no Spark)."""
from __future__ import annotations

import dataclasses
import logging
import os
import time

from hitcast.daemons import group_members, is_running, log_tail, read_pid_file, spawn, stop_groups, write_pid_file


@dataclasses.dataclass(frozen=True)
class Info:
    pid: int
    log: str


def wait_members(pid: int, n: int, timeout_s: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while len(group_members({pid})) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return group_members({pid})


def test_a_group_is_stopped_whole_and_its_pid_file_round_trips(tmp_path):
    log_path = tmp_path / "d.log"
    # a leader with a child in the background: both are in the new session's group
    proc = spawn(["sh", "-c", "echo started; sleep 60 & sleep 60"], cwd=tmp_path, env=os.environ, log_path=log_path)
    members = wait_members(proc.pid, 3)
    assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0) and len(members) == 3
    write_pid_file(tmp_path / "d.json", Info(proc.pid, str(log_path)))
    assert read_pid_file(tmp_path / "d.json", lambda d: Info(**d)) == Info(proc.pid, str(log_path))
    assert read_pid_file(tmp_path / "missing.json", lambda d: Info(**d)) is None

    assert stop_groups([proc.pid], timeout_s=10, what="test") == []
    assert group_members({proc.pid}) == [] and not is_running(proc.pid)
    assert proc.poll() is not None                      # reaped: no zombie left behind
    assert log_tail(log_path) == "started" and log_tail(tmp_path / "nothing.log") == "(no log)"


def test_a_group_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path, caplog):
    proc = spawn(["sh", "-c", "trap '' TERM; sleep 60 & wait; sleep 60"], cwd=tmp_path, env=os.environ,
                 log_path=tmp_path / "d.log")
    wait_members(proc.pid, 2)
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="hitcast.daemons"):
        assert stop_groups([proc.pid], timeout_s=1.0, what="stubborn") == []
    assert 1.0 <= time.monotonic() - t0 < 10
    assert "stubborn processes" in caplog.text and "did not stop on SIGTERM" in caplog.text
    assert group_members({proc.pid}) == []
