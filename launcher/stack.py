"""Runs taskmesh processes locally as children: used by ``taskmesh up``, the
end-to-end tests and the benchmarks, so all three start the system the same way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx


class LocalStack:
    def __init__(
        self,
        env: dict[str, str],
        services: list[str],
        log_dir: Path | None = None,
        sim_args: list[str] | None = None,
    ) -> None:
        self.env = {**os.environ, **env}
        self.services = services
        self.log_dir = log_dir
        self.sim_args = sim_args or []
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    def command(self, name: str) -> list[str]:
        base = [sys.executable, "-m", "launcher"]
        base_name = name.split("#", 1)[0]  # "worker#2": a second worker
        return [*base, base_name, *(self.sim_args if base_name == "llm-sim" else [])]

    def start(self, name: str | None = None) -> None:
        for svc in [name] if name else self.services:
            out: IO[bytes] | None = None
            if self.log_dir is not None:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                out = open(self.log_dir / f"{svc.replace('#', '-')}.log", "ab")  # noqa: SIM115
                self._logs.append(out)
            self.procs[svc] = subprocess.Popen(
                self.command(svc),
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
            )

    def wait_ready(self, gateway_url: str, timeout: float = 60.0) -> None:
        """Waits until the gateway reports Tasks and AI ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(f"{gateway_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError("the stack did not become ready")

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}")

    def signal(self, name: str, sig: int) -> None:
        self.procs[name].send_signal(sig)

    def wait(self, name: str, timeout: float) -> int:
        return self.procs[name].wait(timeout)

    def stop(self, grace_s: float = 30.0) -> dict[str, int]:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        codes = {}
        for name, proc in self.procs.items():
            try:
                codes[name] = proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait()
        for log in self._logs:
            log.close()
        return codes
