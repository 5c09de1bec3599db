"""Where the CPU goes, per process: ``py-spy record`` (PyPI ``py-spy``, a
sampling profiler that reads another process's stacks from outside) attached to
every Python process of a benchmark run, then a top-N summary of each.

Samples are taken only while a thread runs Python code or a native call made
from it (py-spy's default, idle threads are left out), so samples / rate is
close to the CPU seconds of that process; divided by the jobs of the run it
gives milliseconds per job, the unit of the rest of the benchmark.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Samples per second per process. py-spy's default is 100; 200 halves the
#: noise of a short run at about 1 % of a core per profiled process.
RATE = 200
#: Leaf functions of a thread that waits, not works. Without ``--native`` py-spy
#: leaves idle threads out itself; with it, a thread blocked in the kernel shows
#: these C functions, which are dropped here so samples stay CPU time.
WAITING = frozenset(
    {
        "epoll_wait",
        "epoll_pwait",
        "epoll_pwait2",
        "poll",
        "ppoll",
        "select",
        "pselect",
        "clock_nanosleep",
        "nanosleep",
        "wait4",
        "waitpid",
        "pthread_cond_wait",
        "pthread_cond_timedwait",
        "__futex_abstimed_wait_common",
        "__futex_abstimed_wait_common64",
        "sem_wait",
        "sem_timedwait",
    }
)
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str:
    """The py-spy executable installed beside this Python (``make bench`` installs it)."""
    path = Path(sys.executable).parent / "py-spy"
    if not path.exists():
        raise RuntimeError("py-spy is not installed: run `make profile` (or pip install py-spy)")
    return str(path)


class Profiler:
    """Records with ``py-spy record`` on each process of a run; raw collapsed
    stacks are written under ``out_dir``, one file per process name."""

    def __init__(self, out_dir: Path, rate: int = RATE, native: bool = False) -> None:
        self.out_dir = out_dir
        self.rate = rate
        #: Native frames too (C extensions: uvloop, grpc, protobuf...). py-spy then
        #: pauses each process for every sample, which slows it.
        self.native = native
        self.pids: dict[str, int] = {}

    def path(self, name: str) -> Path:
        return self.out_dir / f"{name.replace('#', '-')}.raw"

    @contextmanager
    def recording(self, pids: dict[str, int]) -> Iterator[None]:
        """py-spy on each of ``pids`` (name → pid) while the ``with`` block runs.

        Entering waits (up to 30 s) until every recorder has attached. Raises
        RuntimeError if py-spy is missing or cannot attach (it needs ptrace
        permission over the process: root, or kernel.yama.ptrace_scope 0)."""
        exe = py_spy()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.pids = dict(pids)
        procs: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for name, pid in pids.items():
                with open(self.path(name).with_suffix(".log"), "wb") as log:
                    procs[name] = subprocess.Popen(
                        [exe, "record", "--pid", str(pid), "--rate", str(self.rate)]
                        + ["--format", "raw", "--output", str(self.path(name))]
                        + (["--native"] if self.native else ["--nonblocking"]),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
            deadline = time.monotonic() + 30
            for name in pids:
                log_path = self.path(name).with_suffix(".log")
                while b"Sampling process" not in log_path.read_bytes():
                    if procs[name].poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"py-spy could not attach to {name}: {log_path.read_text().strip()}"
                        )
                    time.sleep(0.05)
            yield
        finally:
            # SIGINT is py-spy's Ctrl-C: it stops sampling and writes its output.
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
            for proc in procs.values():
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def summary(self, jobs: int, top: int = 15) -> str:
        """Per process: CPU ms per job sampled, the ``top`` functions by own
        (self) time and the packages by own time, each in ms per job."""
        lines = []
        for name in self.pids:
            path = self.path(name)
            if not path.exists():
                lines.append(f"  {name}: no profile written")
                continue
            own, packages, total = collapse(path.read_text(errors="replace"))
            per_job = 1000 / self.rate / max(jobs, 1)
            lines.append(f"  {name}: {total * per_job:.2f} ms/job sampled ({total} samples)")
            lines.append(
                "    by package (own time): "
                + ", ".join(f"{p} {n * per_job:.2f}" for p, n in packages.most_common(top))
            )
            for (func, file), n in own.most_common(top):
                lines.append(f"    {n * per_job:6.2f} ms  {func}  ({file})")
        return "\n".join(lines)


def collapse(raw: str) -> tuple[Counter[tuple[str, str]], Counter[str], int]:
    """Parses py-spy's raw format (``frame;frame;... count`` a line, the leaf
    last, each frame ``function (file:line)``) into samples by leaf function
    (function, short file), by package of the leaf, and the total; samples of
    a waiting thread (leaf in ``WAITING``) are left out."""
    own: Counter[tuple[str, str]] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        leaf = stack.rsplit(";", 1)[-1]
        match = _FRAME.match(leaf)
        func, file = (match["func"], match["file"]) if match else (leaf, "?")
        if func in WAITING:
            continue
        total += n
        if not stack.strip():  # sampled while running without any Python frame
            own[("(no Python frame)", "")] += n
            packages["(native)"] += n
            continue
        own[(func, short_path(file))] += n
        packages[package(file)] += n
    return own, packages, total


def short_path(file: str) -> str:
    """A frame's file without the interpreter's or the checkout's prefix."""
    for marker in ("site-packages/", "dist-packages/"):
        if marker in file:
            return file.split(marker, 1)[1]
    root = str(Path(__file__).resolve().parent.parent) + os.sep
    if file.startswith(root):
        return file[len(root) :]
    if "/lib/python3" in file:
        return "stdlib/" + file.split("/lib/python3", 1)[1].split("/", 1)[-1]
    return file


def package(file: str) -> str:
    """The top-level package a frame's file belongs to (``stdlib:asyncio``,
    ``openai``, ``services``...), or the file itself for a loose module."""
    path = short_path(file)
    if path.startswith("stdlib/"):
        head = path.removeprefix("stdlib/").split("/", 1)[0]
        return "stdlib:" + head.removesuffix(".py")
    head = path.split("/", 1)[0]
    return head.removesuffix(".py") if head else path
