"""The sentences both systems' bursts submit: job ``n`` of a burst sends ``sentence(n)``.

Real traffic rarely repeats a sentence, and a repeated one is cheaper everywhere it is
cached or branch-predicted (the simulator keeps a bounded cache of its answers). So by
default every job of a burst gets its own sentence, built from a verb, an object and a
time phrase (SPEC §10's relative dates among them); ``one`` sends the single sentence
earlier benchmark figures were measured with, for comparing against them.
"""

from __future__ import annotations

ONE = "Submit Q2 report by next Friday"

_VERBS = (
    "Submit", "Review", "Send", "Prepare", "Book", "Call about", "Renew", "Pay", "Schedule",
    "Update", "Clean", "Fix", "Order", "Draft", "Check", "Plan", "Return", "Print", "Sign",
    "Archive",
)  # fmt: skip
_OBJECTS = (
    "the Q2 report", "the dentist appointment", "the team offsite agenda", "the car insurance",
    "the electricity bill", "the budget spreadsheet", "the client proposal", "the garage door",
    "the birthday gift for Sam", "the flight to Lisbon", "the slides for Monday's demo",
    "the tax return", "the gym membership", "the lease renewal", "the hiring plan",
    "the onboarding checklist", "the library books", "the passport photos",
    "the kitchen sink", "the conference talk abstract", "the quarterly invoices",
    "the backup drive", "the school forms", "the release notes", "the vet visit for Max",
)  # fmt: skip
_WHEN = (
    "by next Friday", "tomorrow", "today", "this weekend", "before the end of the month",
    "on Monday", "in two weeks", "next Tuesday morning", "by tonight", "after lunch",
    "", "when I get a chance",
)  # fmt: skip

#: How many distinct sentences ``varied`` makes before it repeats (6,000).
DISTINCT = len(_VERBS) * len(_OBJECTS) * len(_WHEN)


def sentence(n: int, mix: str = "varied") -> str:
    """Job ``n``'s sentence (``n`` >= 0): ``mix`` ``"varied"`` gives a different one for every
    ``n`` below :data:`DISTINCT`, ``"one"`` always :data:`ONE`. Raises ValueError for another
    ``mix``."""
    if mix == "one":
        return ONE
    if mix != "varied":
        raise ValueError(f"unknown sentence mix {mix!r}")
    # n's mixed-radix digits pick the verb, the object and the time phrase.
    verb = _VERBS[n % len(_VERBS)]
    obj = _OBJECTS[(n // len(_VERBS)) % len(_OBJECTS)]
    when = _WHEN[(n // (len(_VERBS) * len(_OBJECTS))) % len(_WHEN)]
    return f"{verb} {obj} {when}".strip()
