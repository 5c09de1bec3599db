"""Server-sent events framing (WHATWG HTML, "server-sent events")."""

from __future__ import annotations

import re

from gateway.schemas import Job, dump

CONTENT_TYPE = "text/event-stream"
#: A comment line: keeps proxies from closing an idle stream, ignored by clients.
KEEPALIVE = ": keep-alive\n\n"
#: Seconds between keep-alives while the job sits still.
KEEPALIVE_INTERVAL_S = 15.0
#: Seconds a resuming client may wait for headers while already-seen events are skipped.
FIRST_BYTE_S = 1.0


def job_event(sequence: int, job: Job) -> str:
    # One line of JSON (no newlines in the dump), so a single data field holds it.
    return f"id: {sequence}\nevent: {job.status}\ndata: {dump(job)}\n\n"


#: The ids this stream sends: ASCII digits of a job's version, an int64 on the wire. Anything
#: else (other scripts' digits, "²", 5,000 digits that int() refuses) is no id of ours.
_EVENT_ID = re.compile(r"[0-9]{1,19}")


def last_event_id(header: str | None) -> int | None:
    """The sequence a resuming client already has (``Last-Event-ID``); a foreign id — not
    one to 19 ASCII digits — means none."""
    if header is None:
        return None
    value = header.strip()
    return int(value) if _EVENT_ID.fullmatch(value) else None
