"""``taskmesh submit "text"``: submit, follow the job, print the task."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import httpx

TERMINAL = {"succeeded", "failed"}


def run(args: argparse.Namespace) -> int:
    base = os.environ.get("TASKMESH_URL", "http://127.0.0.1:8080").rstrip("/")
    key = os.environ.get("TASKMESH_API_KEY")
    if not key:
        print("taskmesh: set TASKMESH_API_KEY (taskmesh up prints one)", file=sys.stderr)
        return 2
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
            response = http.post("/api/v1/tasks", json={"naturalLanguage": args.text})
            if response.status_code not in (201, 202):
                _problem(response)
                return 1
            job_url = response.headers.get("Location") or f"/api/v1/jobs/{response.json()['jobId']}"
            deadline = time.monotonic() + args.timeout
            last = None
            while True:
                job = http.get(job_url).json()
                if job.get("status") != last:
                    last = job.get("status")
                    if not args.json:
                        print(f"… {last}", file=sys.stderr)
                if job.get("status") in TERMINAL or time.monotonic() > deadline:
                    break
                time.sleep(0.25)
    except httpx.HTTPError as exc:
        print(f"taskmesh: cannot reach {base} ({type(exc).__name__})", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(job, indent=2))
    else:
        _print_job(job)
    return 0 if job.get("status") == "succeeded" else 1


def _problem(response: httpx.Response) -> None:
    try:
        body = response.json()
        print(f"taskmesh: {response.status_code} {body.get('title')}: {body.get('detail')}", file=sys.stderr)
        for hint in body.get("suggestions") or []:
            print(f"  - {hint}", file=sys.stderr)
    except ValueError:
        print(f"taskmesh: HTTP {response.status_code}", file=sys.stderr)


def _print_job(job: dict) -> None:  # type: ignore[type-arg]
    task = job.get("task")
    if task:
        prio = task["priority"]
        print(task["title"])
        print(f"  due:      {task.get('dueDate') or '-'}")
        print(f"  category: {task['category']}")
        print(f"  priority: {prio['level']} ({prio['score']}) — {prio['reason']}")
        for sub in task.get("subtasks") or []:
            print(f"  {sub['order']}. {sub['title']}")
        return
    error = job.get("error") or {}
    print(f"failed: {error.get('type')}: {error.get('message')}")
    for hint in error.get("suggestions") or []:
        print(f"  - {hint}")
