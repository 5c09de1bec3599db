"""``taskmesh eval``: the evaluation cases against an endpoint, a table and a JSON report;
``taskmesh eval --compare A.json B.json`` tabulates two reports.

Without ``--base-url`` the endpoint is ``OPENAI_BASE_URL`` when set, and the built-in
simulator otherwise. Exit codes: 0 done (whatever the pass rate, unless ``--min-pass`` is not
reached), 1 below ``--min-pass`` or a report could not be read, 2 usage."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from launcher.arguments import positive_int, positive_seconds


def register(sub: Any) -> None:
    """Adds the ``eval`` command to the CLI's subparsers."""
    parser = sub.add_parser(
        "eval", help="evaluate parse-task against an OpenAI-compatible endpoint"
    )
    parser.add_argument("--base-url", help="endpoint, e.g. http://127.0.0.1:8080/v1")
    parser.add_argument("--model", help="model name (default OPENAI_MODEL)")
    parser.add_argument("--api-key", help="key (default OPENAI_API_KEY; local servers need none)")
    parser.add_argument("--prompt-version", help="prompt files (default PARSE_TASK_PROMPT_VERSION)")
    parser.add_argument(
        "--response-format",
        choices=["auto", "json_schema", "json_object", "none"],
        help="structured-output mode (default OPENAI_RESPONSE_FORMAT)",
    )
    parser.add_argument(
        "--timeout", type=positive_seconds, help="seconds per call (default OPENAI_TIMEOUT_S)"
    )
    parser.add_argument(
        "--concurrency", type=positive_int, default=2, help="cases at once (default 2)"
    )
    parser.add_argument("--cases", help="comma-separated case ids (default all)")
    parser.add_argument("--out", help="write the JSON report here")
    parser.add_argument(
        "--min-pass", type=float, default=0.0, help="exit 1 when fewer cases pass (fraction)"
    )
    parser.add_argument(
        "--compare", nargs=2, metavar=("A.json", "B.json"), help="tabulate two reports"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from taskmesh.evals.run import compare_reports

    if args.compare:
        try:
            a, b = (json.loads(Path(p).read_text(encoding="utf-8")) for p in args.compare)
            print(compare_reports(a, b))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"cannot read the reports: {exc}", file=sys.stderr)
            return 1
        return 0
    return asyncio.run(_evaluate(args))


async def _evaluate(args: argparse.Namespace) -> int:
    import openai

    from llm_sim import SimOptions, SimServer
    from taskmesh.capabilities.llm_client import CallOptions, configure
    from taskmesh.evals.cases import ALL_CASES
    from taskmesh.evals.run import format_report, run_eval
    from taskmesh.settings import Settings, load_settings

    settings: Settings = load_settings()
    cases = ALL_CASES
    if args.cases:
        wanted = {c.strip() for c in args.cases.split(",") if c.strip()}
        cases = [c for c in ALL_CASES if c.id in wanted]
        unknown = wanted - {c.id for c in cases}
        if unknown:
            print(f"unknown case ids: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
    options = CallOptions.from_settings(settings)
    if args.response_format:
        options = CallOptions(
            options.max_tokens_core, options.max_tokens_subtasks, args.response_format
        )
    prompt_version = args.prompt_version or settings.parse_task_prompt_version
    timeout = args.timeout or settings.openai_timeout_s
    base_url = args.base_url or settings.openai_base_url
    key = args.api_key or (
        settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    )

    async def against(url: str | None, model: str) -> dict[str, Any]:
        client = openai.AsyncOpenAI(
            base_url=url, api_key=key or "no-key", max_retries=0, timeout=timeout
        )
        configure(client, options)
        async with client:
            return await run_eval(
                client,
                model,
                cases,
                prompt_version=prompt_version,
                options=options,
                endpoint=url or "OpenAI",
                concurrency=args.concurrency,
            )

    if base_url is None and key is None:
        async with SimServer(SimOptions(), port=0) as server:
            report = await against(server.base_url, args.model or "taskmesh-sim")
        report["endpoint"] = "simulator"
    else:
        report = await against(base_url, args.model or settings.openai_model)
    print(format_report(report))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        print(f"report written to {args.out}")
    summary = report["summary"]
    rate = summary["passed"] / summary["cases"] if summary["cases"] else 0.0
    return 1 if rate < args.min_pass else 0
