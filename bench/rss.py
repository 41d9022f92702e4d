"""Peak resident memory (VmRSS from ``/proc``) of a benchmark's own processes, sampled in a thread.

Only processes descending from this one count (not other users' Spark jobs on the same machine): this
driver, its JVM (in local mode the driver and the executors at once) and the pyspark Python workers
(``pyspark.daemon`` and the workers it forks)::

    with RssSampler() as rss:            # or sampler = RssSampler(); sampler.start(); ... sampler.stop()
        run_the_job()
    rss.max_mib                          # peak RSS of any one Python worker, MiB
    rss.peak                             # peaks (MiB): driver_python, jvm, python_worker_max, python_workers_sum
    len(rss.workers)                     # Python worker processes seen
"""
from __future__ import annotations

import os
import threading

PEAK_KEYS = ("driver_python", "jvm", "python_worker_max", "python_workers_sum")


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def processes() -> dict[int, tuple[int, str]]:
    """``{pid: (parent pid, command line)}`` of every process visible in ``/proc``."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{d}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        out[int(d)] = (ppid, cmd)
    return out


def descendants(procs: dict[int, tuple[int, str]], root: int) -> set[int]:
    """Every process below ``root`` in ``procs``."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out, frontier = set(), [root]
    while frontier:
        nxt = [c for p in frontier for c in children.get(p, ()) if c not in out]
        out.update(nxt)
        frontier = nxt
    return out


def is_python_worker(cmd: str) -> bool:
    return "pyspark.daemon" in cmd or "pyspark.worker" in cmd


class RssSampler(threading.Thread):
    """Samples, every ``period`` seconds, the RSS of this driver, its JVM and its pyspark Python workers.

    Attributes
    ----------
    peak : dict
        Peak MiB of ``driver_python``, ``jvm``, ``python_worker_max`` (the largest single worker) and
        ``python_workers_sum`` (all workers at one sample). Assign a fresh dict to restart the peaks.
    workers : dict
        Peak KiB per Python worker pid.
    """

    def __init__(self, period: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.period = period
        self.stop_flag = threading.Event()
        self.peak: dict[str, float] = dict.fromkeys(PEAK_KEYS, 0.0)
        self.workers: dict[int, int] = {}

    def sample(self) -> None:
        """Take one sample now."""
        me = os.getpid()
        procs = processes()
        mine = descendants(procs, me)
        jvm = sum(rss_kib(p) for p in mine if "java" in procs[p][1].split(" ")[0])
        workers = {p: rss_kib(p) for p in mine if is_python_worker(procs[p][1])}
        for pid, kib in workers.items():
            self.workers[pid] = max(self.workers.get(pid, 0), kib)
        values = {"driver_python": rss_kib(me), "jvm": jvm, "python_worker_max": max(workers.values(), default=0),
                  "python_workers_sum": sum(workers.values())}
        for key, kib in values.items():
            self.peak[key] = max(self.peak.get(key, 0.0), kib / 1024.0)

    def run(self) -> None:
        while not self.stop_flag.is_set():
            self.sample()
            self.stop_flag.wait(self.period)

    def stop(self) -> None:
        """Stop sampling (after one last sample)."""
        self.stop_flag.set()
        if self.is_alive():
            self.join()
        self.sample()

    def __enter__(self) -> "RssSampler":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def max_mib(self) -> float:
        """Peak RSS of any one Python worker, MiB."""
        return max(self.workers.values(), default=0) / 1024
