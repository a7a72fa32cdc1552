"""Watch a command and every process it starts: wall time, CPU seconds and peak RSS per process, machine load.

Used by the benchmarks that run matlib as a user would (a subprocess: the CLI, its Dask workers, Prefect's
server): psutil samples the whole process tree every `interval` seconds, so a worker's figures are kept even after
it exits (its last sample).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psutil


@dataclass
class ProcessFigures:
    """What one process of the tree used: its command (shortened), peak RSS and CPU seconds (last sample)."""

    pid: int
    command: str
    peak_rss_mb: float = 0.0
    cpu_s: float = 0.0


@dataclass
class RunFigures:
    """A monitored run: return code, wall seconds, each process's figures, and the machine's CPU use meanwhile."""

    returncode: int
    wall_s: float
    processes: list[ProcessFigures] = field(default_factory=list)
    machine_busy_s: float = 0.0
    cores: int = 1

    @property
    def cpu_s(self) -> float:
        """CPU seconds of the whole tree."""
        return sum(p.cpu_s for p in self.processes)

    @property
    def utilisation(self) -> float:
        """The tree's CPU seconds over wall x cores."""
        return self.cpu_s / max(self.wall_s * self.cores, 1e-9)

    @property
    def other_load(self) -> float:
        """Cores kept busy by other work on the machine during the run (the machine's busy time not ours / wall)."""
        return max(self.machine_busy_s - self.cpu_s, 0.0) / max(self.wall_s, 1e-9)

    @property
    def peak_rss_mb(self) -> float:
        """The largest single process's peak RSS."""
        return max((p.peak_rss_mb for p in self.processes), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        """Plain figures for a JSON record."""
        return {
            "returncode": self.returncode,
            "wall_s": round(self.wall_s, 1),
            "cpu_s": round(self.cpu_s, 1),
            "cores": self.cores,
            "utilisation": round(self.utilisation, 3),
            "other_load_cores": round(self.other_load, 2),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "processes": [vars(p) | {"peak_rss_mb": round(p.peak_rss_mb, 1)} for p in self.processes],
        }

    def lines(self) -> list[str]:
        """A short human summary: totals, then one line per process that used CPU or memory."""
        out = [
            f"wall {self.wall_s:.1f} s, CPU {self.cpu_s:.1f} s over {self.cores} cores (utilisation "
            f"{self.utilisation:.0%}), other load on the machine {self.other_load:.2f} cores"
        ]
        for p in sorted(self.processes, key=lambda p: -p.cpu_s):
            if p.cpu_s >= 0.5 or p.peak_rss_mb >= 50:
                out.append(f"  pid {p.pid:>7}  CPU {p.cpu_s:8.1f} s  peak RSS {p.peak_rss_mb:7.0f} MB  {p.command}")
        return out


def _short(proc: psutil.Process) -> str:
    """A process's command line, shortened to what tells processes apart."""
    try:
        cmd = proc.cmdline()
    except (psutil.Error, OSError):
        return "?"
    if any("spawn_main" in c for c in cmd):
        return "python, spawned by multiprocessing (a Dask worker process)"
    text = " ".join(os.path.basename(cmd[0]) if i == 0 else c for i, c in enumerate(cmd))
    return text[:110]


class TreeSampler:
    """Samples a root process and its descendants on a thread until stopped."""

    def __init__(self, root_pid: int, interval: float = 0.5) -> None:
        self.root = psutil.Process(root_pid)
        self.interval = interval
        self.figures: dict[int, ProcessFigures] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._busy0 = self._machine_busy()

    @staticmethod
    def _machine_busy() -> float:
        """CPU seconds the whole machine spent not idle so far."""
        t = psutil.cpu_times()
        return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))

    def _sample(self) -> None:
        """One sample of every live process of the tree."""
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        for p in procs:
            try:
                with p.oneshot():
                    rss = p.memory_info().rss / 2**20
                    t = p.cpu_times()
                    cpu = t.user + t.system
            except (psutil.Error, OSError):
                continue
            fig = self.figures.get(p.pid)
            if fig is None:
                fig = self.figures[p.pid] = ProcessFigures(p.pid, _short(p))
            fig.peak_rss_mb = max(fig.peak_rss_mb, rss)
            fig.cpu_s = max(fig.cpu_s, cpu)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def stop(self) -> float:
        """Stop sampling; returns the machine's busy CPU seconds since the sampler was made."""
        self._stop.set()
        self._thread.join()
        return self._machine_busy() - self._busy0


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant (a crash, as far as the program can tell)."""
    try:
        root = psutil.Process(pid)
        procs = [*root.children(recursive=True), root]
    except psutil.Error:
        return
    for p in procs:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass


def run_monitored(
    cmd: list[str], env: dict[str, str] | None = None, log: str | None = None, kill_after: float | None = None
) -> RunFigures:
    """Run cmd to completion (or SIGKILL its tree after kill_after seconds), sampling its process tree."""
    out = open(log, "a") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    try:
        rc = proc.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        sampler._sample()
        kill_tree(proc.pid)
        rc = proc.wait()
    wall = time.perf_counter() - t0
    busy = sampler.stop()
    if log:
        out.close()  # type: ignore[union-attr]
    return RunFigures(rc, wall, list(sampler.figures.values()), busy, psutil.cpu_count() or 1)
