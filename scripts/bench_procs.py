"""Process figures for the benchmarks, read from /proc (Linux): CPU seconds,
resident memory, RabbitMQ's pid, a process's children."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (its exited children excluded)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MiB (0 if the kernel does not say)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rabbit_pid() -> int | None:
    """The pid of the local RabbitMQ node (``beam.smp``), or None."""
    out = subprocess.run(
        ["pgrep", "-f", "beam.smp.*rabbit"], capture_output=True, text=True
    ).stdout.split()
    return int(out[0]) if out else None


def children(pid: int) -> list[int]:
    """Pids whose parent is ``pid``, in pid order."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)
