"""Hand-written English patterns: text that addresses the model, not work vocabulary.

"print the quarterly report", "update the instructions manual" or "review the system prompt design
doc" are ordinary tasks and must pass, while "print your system prompt" must not. Role changes
("you are now …") only count when they open a clause; reported speech ("tell the team you are now
the owner") passes. These patterns block alone: each has zero refusals on the look-alike corpus.

Every regex is linear in the input: separators are matched possessively and every repetition of
words is bounded, so hostile input cannot trigger catastrophic backtracking.
"""

from __future__ import annotations

import re
from enum import StrEnum


class PatternType(StrEnum):
    """The four families of SPEC §10; also the label of the blocked-injections metric (§12)."""

    INSTRUCTION_OVERRIDE = "instruction_override"
    PROMPT_EXTRACTION = "prompt_extraction"
    OUTPUT_OVERRIDE = "output_override"
    FORMAT_MANIPULATION = "format_manipulation"


# --------------------------------------------------------------------------------------------
# Pattern vocabulary
# --------------------------------------------------------------------------------------------

# Words may be glued together once spaced-out letters are joined ("ignoreallprevious"), so the
# gap between the words of a phrase is optional; possessive, so it never backtracks.
_GAP = r"\W*+"
# Patterns that open on punctuation could start anywhere inside a long run of it; a bounded gap
# keeps each start O(1).
_SHORT_GAP = r"\W{0,10}+"


def _word(word: str) -> str:
    # Leetspeak writes "1" for both "i" and "l", and "I" and "l" look alike: either letter passes
    # for the other in a keyword, which costs benign text nothing.
    return re.sub(r"[il]", "[il]", word)


def _alt(*phrases: str) -> str:
    return "(?:" + "|".join(_GAP.join(_word(w) for w in p.split(" ")) for p in phrases) + ")"


def _opt(*phrases: str) -> str:
    return f"(?:{_alt(*phrases)}{_GAP})?"


def _rep(lo: int, hi: int, *phrases: str) -> str:
    return f"(?:{_alt(*phrases)}{_GAP}){{{lo},{hi}}}"


# A noun that only modifies a work artefact ("system prompt design doc", "instructions manual")
# is work vocabulary, not a demand.
_ARTEFACT = (
    r"(?!\W*+(?:design|doc|docs|document|documentation|draft|template|templates|file|files"
    r"|spec|specs|guide|manual|review|sheet|checklist|library|repo|repository|test|tests"
    r"|example|examples|homework|class|course|assignment|exam|session|project|lesson|book"
    r"|booklet|page|section|writing|engineering|card|cards|video|poster|binder|folder"
    r"|changes|update|updates|version|ideas|workshop)\b)"
)

_OVERRIDE_VERB = _alt(
    "ignore", "forget", "disregard", "override", "overrule", "skip", "bypass", "neglect",
    "discard", "dismiss", "abandon", "do not follow", "dont follow", "stop following",
    "no longer follow", "do not obey", "dont obey", "stop obeying",
)  # fmt: skip
_QUANT = ("all", "any", "every", "each")
_DET = ("the", "your", "my", "our", "these", "those", "this", "that")
_EARLIER = (
    "previous", "previously given", "prior", "earlier", "above", "preceding", "foregoing",
    "former", "original", "initial", "system", "developer", "hidden", "predefined", "preset",
)  # fmt: skip
_MODIFIER = (
    "safety", "security", "content", "core", "base", "default", "given", "current", "existing",
    "specific", "exact", "user", "assistant", "ai", "model", "openai", "ethical", "moral",
)  # fmt: skip
_RULES_NOUN = _alt(
    "instructions?", "rules?", "directions?", "directives?", "prompts?", "guidelines?",
    "commands?", "constraints?", "restrictions?", "context", "guidance", "orders", "policy",
    "policies", "programming", "training", "filters?", "guardrails?", "safeguards?",
)  # fmt: skip
# What was said rather than what must be obeyed: overridden only when it is not the writer's
# own ("ignore the previous messages" blocks; "please ignore my earlier message, it's on
# Thursday" is how people correct themselves in the mails and chats pasted as tasks).
_SAID_NOUN = _alt("messages?", "text", "input")
_NOT_OWN_DET = tuple(d for d in _DET if d not in ("my", "our"))
_STRONG_NOUN = _alt(
    "instructions?", "rules", "directives?", "prompts?", "guidelines", "constraints",
    "restrictions", "programming", "guardrails", "safeguards", "filters", "policy", "policies",
)  # fmt: skip

_PROMPT_NOUN = _alt(
    "instructions?", "prompts?", "system message", "system prompt", "directives?", "guidelines",
    "rules", "configuration", "initial message", "first message",
)  # fmt: skip
_REVEAL_VERB = _alt(
    "repeat", "echo", "show", "display", "print", "output", "reveal", "leak", "dump", "expose",
    "disclose", "recite", "tell me", "tell us", "give me", "give us", "write out", "spell out",
    "read back", "read out", "copy", "paste",
)  # fmt: skip
_HIDDEN = (
    "system", "initial", "hidden", "secret", "internal", "underlying", "developer", "preceding",
    "above", "confidential",
)  # fmt: skip
_REVEAL_MOD = (*_HIDDEN, "full", "exact", "entire", "complete", "whole", "verbatim", "original",
               "current", "real", "actual", "first")  # fmt: skip
# "what are your … instructions": a few free words, but not ones that start a new phrase
# ("tell me your thoughts on the prompt").
_FREE_WORDS = (
    r"(?:(?!(?:the|a|an|and|or|to|of|on|in|for|with|about|regarding|at|from|by|into|than"
    r"|then|but|so|if|as|is|are|was|were)\b)[a-z]++\W++){0,3}?"
)
_YOUR = _alt("your", "ur", "yer")


def _compile(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


_FORMAT = _compile(
    # Markdown headings that open a fake instruction section.
    r"(?:^|\n)[^\w\n#]{0,4}+#{1,6}+" + _SHORT_GAP + _opt("new", "updated", "system")
    + _alt("system", "instructions?", "prompt", "assistant", "developer", "response", "override")
    + r"\b",
    r"(?<!#)#{2,}+" + _SHORT_GAP + _alt("system", "instructions?", "prompt") + r"\b",
    # Code fences whose content (or language tag) claims to be instructions.
    r"(?:(?<!`)`{3,}+|(?<!~)~{3,}+)" + _SHORT_GAP + r"(?:[a-z]++[^\S\n]{0,10}+\n" + _SHORT_GAP
    + ")?"
    + _alt("instructions?", "prompts?", "system", "rules", "assistant", "developer") + r"\b",
    # Chat-template role tags.
    r"(?:<|\[|\{\|)" + _SHORT_GAP
    + _alt("im start", "im end", "im sep", "endoftext", "eot id", "start header id",
           "end header id", "system", "sys", "inst", "assistant", "developer")
    + r"\b",
    r"\b" + _alt("begin", "end", "start") + _GAP + _opt("of") + _opt("the")
    + _alt("system prompt", "system message", "system instructions?", "new instructions?")
    + _ARTEFACT,
    r"\b" + _alt("begin", "end") + _GAP + _opt("of") + _alt("instructions", "prompt") + r"\b"
    + _ARTEFACT,
)  # fmt: skip


def _override_earlier(determiners: tuple[str, ...], noun: str) -> str:
    """An override verb, then earlier `noun`s: "ignore all (of) (`determiners`) previous …"."""
    return (
        r"\b" + _OVERRIDE_VERB + _GAP + _opt(*_QUANT) + _opt("of") + _opt(*determiners)
        + _rep(0, 2, *_MODIFIER) + _alt(*_EARLIER) + _GAP
        + _rep(0, 3, *_MODIFIER, *_EARLIER, "and", "or", "following", "future", "other")
        + noun + _ARTEFACT
    )  # fmt: skip


_OVERRIDE = _compile(
    # ignore all previous instructions / disregard the above rules / skip your system prompt
    _override_earlier(_DET, _RULES_NOUN),
    # ignore the previous messages / disregard all earlier input (not "my earlier message")
    _override_earlier(_NOT_OWN_DET, _SAID_NOUN),
    # forget all rules / bypass any restrictions
    r"\b" + _OVERRIDE_VERB + _GAP + _alt(*_QUANT) + _GAP + _opt("of") + _opt(*_DET)
    + _rep(0, 2, *_MODIFIER) + _STRONG_NOUN + _ARTEFACT,
    # override your rules
    r"\b" + _OVERRIDE_VERB + _GAP + _YOUR + _GAP + _rep(0, 3, *_MODIFIER, *_EARLIER)
    + _STRONG_NOUN + _ARTEFACT,
    # ignore instructions
    r"\b" + _alt("ignore", "disregard") + _GAP + _rep(0, 2, *_MODIFIER)
    + _alt("instructions?", "prompts?") + _ARTEFACT,
    # ignore the above / disregard everything before this
    r"\b" + _OVERRIDE_VERB + _GAP + _opt(*_QUANT) + _opt("of") + _opt("the")
    + _alt("above", "foregoing") + r"\b(?!\W*+(?:the|a|an|my|our|your|his|her|their)\b)",
    r"\b" + _OVERRIDE_VERB + _GAP + _alt("everything", "anything")
    + _GAP + _alt("above", "before this", "prior", "previous", "earlier", "so far", "you know")
    + r"\b",
    r"\b" + _OVERRIDE_VERB + _GAP + _alt("everything", "anything", "what", "all")
    + _GAP + _alt("you were told", "you have been told", "youve been told", "you were taught",
                  "you were given", "you have been given", "youve been given")
    + r"\b",
    # your new task is … / your new instructions:
    r"\b" + _YOUR + _GAP + _alt("new", "real", "actual", "true", "updated") + _GAP
    + _alt("role", "task", "instructions?", "persona", "identity", "objective", "goal",
           "purpose", "job", "directives?", "mission", "rules", "name", "prompt", "function")
    + r"\s*+(?:[:=]|(?:is|are|will\s++be|now)\b)",
    r"(?:^|(?<=[\n.!?])\W{0,3})" + _alt("new", "updated", "revised", "real", "actual", "true",
                                        "override")
    + _GAP + _opt("system") + _alt("instructions?", "prompt", "directives?", "system message")
    + r"\s*+:",
    r"\b" + _alt("enable", "enter", "activate", "switch to", "turn on") + _GAP
    + _alt("dan", "jailbreak", "jailbroken", "god", "unrestricted", "unfiltered") + _GAP
    + _word("mode") + r"\b",
    r"\bdo" + _GAP + "anything" + _GAP + r"now\b",
)  # fmt: skip

# Role changes count only when they address the model directly; see `_addresses_model`.
_ROLE_CHANGE = _compile(
    r"\b(?:you|u)" + _GAP + r"(?:are|re|r)" + _GAP + r"now(?!here|adays)\b",
    r"\b(?:you|u)" + _GAP + r"(?:will|ll)" + _GAP + r"now" + _GAP
    + _alt("be", "act", "behave", "respond", "answer", "pretend", "roleplay", "follow", "obey",
           "ignore", "only", "speak", "function", "operate", "serve"),
    r"\bnow" + _GAP + r"(?:you|u)" + _GAP + r"(?:are|re|will\W*+be)\b",
    r"\bfrom" + _GAP + "now" + _GAP + r"on" + _GAP
    + _alt("you", "act", "behave", "pretend", "roleplay", "respond as", "answer as",
           "speak as", "ignore", "disregard", "forget", "only respond", "always respond"),
    r"\b" + _word("roleplay") + _GAP + r"as\b",
    r"\byou" + _GAP + r"(?:are|re)" + _GAP + _word("no longer") + _GAP + _opt("a", "an", "the")
    + _alt("assistant", "ai", "chatbot", "bot", "model", "language model", "parser",
           "task parser", "bound", "restricted", "limited", "required", "constrained",
           "obligated"),
    r"\byou" + _GAP + r"(?:are|re)" + _GAP + _opt("a", "an")
    + _alt("unrestricted", "jailbroken", "unfiltered", "uncensored", "evil", "rogue",
           "different", "new", "free", "liberated")
    + _GAP + _alt("ai", "assistant", "model", "bot", "chatbot", "llm", "language model",
                  "system", "persona", "entity", "version") + r"\b",
    r"\byou" + _GAP + r"(?:are|re)" + _GAP + r"dan\b",
    r"\b(?:i" + _GAP + r"am|im|as)" + _GAP + _YOUR + _GAP
    + _alt("developer", "creator", "administrator", "admin", "programmer", "operator", "owner",
           "maker", "master")
    + r"\b",
)  # fmt: skip

_EXTRACTION = _compile(
    # show me your (system) instructions / print all your system message
    r"\b" + _REVEAL_VERB + _GAP + _opt("me", "us") + _opt("back", "out")
    + _opt("all", "everything", "each")
    + _opt("of", "in") + _opt("the") + _YOUR + _GAP + _rep(0, 3, *_REVEAL_MOD) + _FREE_WORDS
    + _PROMPT_NOUN + _ARTEFACT,
    # repeat the text above / print everything before this line
    r"\b" + _REVEAL_VERB + _GAP + _opt("me", "us") + _opt("back", "out")
    + _opt("the", "all", "all the")
    + _opt("full", "entire", "whole", "exact")
    + _alt("everything", "text", "words?", "content", "instructions?", "prompt", "messages?",
           "lines?", "conversation")
    + _GAP + _opt("that", "which") + _opt("is", "was", "were", "came", "comes", "appears")
    + _alt("above", "before this", "before that", "preceding", "prior to this", "so far",
           "verbatim", "word for word")
    + r"\b(?!\W*+(?:the|a|an|my|our|your|his|her|their)\b)",
    # repeat the first line of your prompt
    r"\b" + _REVEAL_VERB + _GAP + r"(?:[a-z]++\W++){0,4}?" + _alt("of", "from", "in") + _GAP
    + _YOUR + _GAP + _rep(0, 2, *_REVEAL_MOD) + _PROMPT_NOUN + _ARTEFACT,
    # what are your … instructions / whats the system prompt
    r"\bwhat" + _GAP + _alt("s", "are", "is", "were", "was", "r") + _GAP + _YOUR + _GAP
    + _rep(0, 3, *_REVEAL_MOD) + _FREE_WORDS + _PROMPT_NOUN + _ARTEFACT,
    r"\bwhat" + _GAP + _alt("s", "are", "is", "were", "was") + _GAP + _opt("the")
    + _alt(*_HIDDEN) + _GAP + _rep(0, 2, *_REVEAL_MOD) + _PROMPT_NOUN + _ARTEFACT,
    r"\bwhat" + _GAP + _alt("were", "have", "did") + _GAP + r"you" + _GAP + _opt("been")
    + _alt("told", "instructed", "programmed", "prompted", "given")
    + r"\b",
    r"\bhow" + _GAP + _alt("were", "are", "have") + _GAP + r"you" + _GAP + _opt("been")
    + _alt("instructed", "programmed", "prompted", "configured") + r"\b",
    r"\bwhat" + _GAP + _alt("instructions", "rules", "prompt", "system prompt", "directives")
    + _GAP + _alt("were you given", "did you get", "did you receive", "do you have",
                  "are you following", "do you follow")
    + r"\b",
)  # fmt: skip

_OUTPUT_VERB_ALWAYS = _alt(
    "output", "respond", "reply", "answer", "assign", "classify", "categori[sz]e", "label",
    "print", "emit",
)  # fmt: skip
_OUTPUT_VERB_ON_FIELD = _alt(
    "return", "set", "make", "give", "put", "mark", "change", "use", "write", "say", "produce",
    "generate",
)  # fmt: skip
_OUTPUT_FIELD = (
    r"(?:" + _opt("the", "its", "it", "this", "that", "a", "an", "your", "all", "every", "my")
    + _alt("priority", "category", "score", "title", "value", "output", "response", "result",
           "answer", "field", "fields", "json", "level", "due date", "duedate", "date", "task",
           "subtasks", "everything", "following")
    + r"|it\b)"
)  # fmt: skip
# A literal value handed over in quotes or as JSON; the gap must not swallow the opening mark.
_LITERAL = r"[^\w\"'\u201c\u2018{\[]*+[\"'\u201c\u2018{\[]"

# "Task. Instead set the value": only when "instead" opens a clause; see `_opens_clause`.
_INSTEAD = re.compile(
    r"\b" + _word("instead") + _GAP + _opt("just", "only", "please", "simply")
    + r"(?:" + _OUTPUT_VERB_ALWAYS + r"|" + _OUTPUT_VERB_ON_FIELD
    + r"(?:" + _GAP + _OUTPUT_FIELD + r"|" + _LITERAL + r"))"
)  # fmt: skip

_OUTPUT = _compile(
    # instead of parsing the task, return …
    r"\b" + _word("instead") + r"\W++of\b[^.\n]{0,80}?,\W*+"
    + _alt("return", "output", "respond", "reply", "print", "say", "set", "assign", "give"),
    # ignore the task and return …
    r"\b" + _alt("ignore", "disregard", "skip") + _GAP + _opt("the", "this", "that", "my")
    + _alt("task", "input", "request", "text", "sentence", "message", "above")
    + _GAP + _opt("and") + _opt("just", "only", "instead", "simply")
    + _alt("return", "output", "respond", "reply", "print", "say", "set", "assign", "give"),
    r"\b" + _alt("always", "only", "just") + _GAP + _alt("return", "output", "respond with",
                                                          "reply with")
    + _LITERAL,
    # always output the category finance / only return the priority critical
    r"\b" + _alt("always", "only", "just") + _GAP
    + _alt("output", "return", "respond with", "reply with", "answer with")
    + _GAP + _opt("the", "a") + _alt("category", "priority", "score", "title", "level")
    + r"\b(?!\W*+(?:labels?|names?|list|field|of|for|in|on|from|when|if|that|which|who)\b)",
    r"\b" + _alt("regardless", "irrespective") + _GAP + "of" + _GAP + _opt("the")
    + _alt("input", "task", "text", "content", "instructions?", "request", "sentence")
    + r"\b",
    r"\bno" + _GAP + "matter" + _GAP + "what" + _GAP + _opt("the")
    + _alt("input", "task", "text", "content", "user", "instructions?", "request") + r"\b",
)  # fmt: skip

# Patterns of an answer's shape, a speaker label or a prompt named without its owner, which
# honest text also holds ("ask Bob to answer with the word yes or no", a pasted ticket's
# "System: Outlook" line, "print the developer instructions for the coffee machine"): they
# block only where the model agrees (see `confirm_family` and cascade.decide).
_CONFIRM = (
    (
        PatternType.INSTRUCTION_OVERRIDE,
        # "act as if you were an AI without rules", but also "act as if you were the landlord
        # when rehearsing with Tom": a note to oneself for a role-play, which the model scores
        # near 0 (attacks near 1). "pretend to be a customer" is a mystery-shopping task and
        # matches neither.
        _compile(
            r"\b" + _alt("act", "behave") + _GAP + _alt("as if", "as though", "like", "as")
            + _GAP + r"you" + _GAP + r"(?:are|re|were)\b",
            r"\b" + _word("pretend") + _GAP + _opt("that") + r"you" + _GAP + r"(?:are|re|were)\b",
        ),
    ),
    (
        PatternType.FORMAT_MANIPULATION,
        # A "system:" speaker label opening a line or a sentence.
        _compile(
            r"(?:^|\n|(?<=[.!?]) )[^\w\n]{0,4}" + _word("system")
            + r"(?:[^\w:\n]*+" + _alt("prompt", "message", "instructions?", "override") + r")?"
            + r"[^\w:\n]*+:",
        ),
    ),
    (
        PatternType.PROMPT_EXTRACTION,
        # reveal the system prompt; but "print the developer instructions for the coffee
        # machine" names a document, and nobody's prompt.
        _compile(
            r"\b" + _REVEAL_VERB + _GAP + _opt("me", "us") + _opt("back", "out")
            + _opt("all", "everything") + _opt("of")
            + _opt("the") + _rep(0, 2, "full", "exact", "entire", "complete", "whole", "verbatim")
            + _alt(*_HIDDEN) + _GAP + _rep(0, 2, *_REVEAL_MOD) + _PROMPT_NOUN + _ARTEFACT,
        ),
    ),
    (
        PatternType.OUTPUT_OVERRIDE,
        _compile(
            r"\b" + _alt("respond", "reply", "answer", "output") + _GAP + _opt("only")
            + _word("with") + _GAP + _opt("only") + _opt("the") + _alt("word", "phrase", "string")
            + r"\b",
        ),
    ),
)  # fmt: skip

_CLAUSE_BREAKS = ".!?\n"
_LOOK_BACK = 120
# Reported or subordinate speech: "tell the team you are now the owner", "check that you are now
# enrolled", "ask the actors to pretend to be customers".
_REPORTED = re.compile(
    r"\b(?:tell|tells|told|telling|inform|informs|informed|remind|reminds|notify|notifies|let"
    r"|lets|say|says|said|announce|announces|email|message|text|write|writes|confirm|confirms"
    r"|ask|asks|asked|congratulate|explain|mention|that|whether|if|when|once|because|since"
    r"|until|unless|sure|check|verify|ensure|have|get|make|help|teach|train)\b"
)
_ADDRESS_WORDS = frozenset(
    {
        "ok", "okay", "alright", "hey", "hi", "hello", "listen", "look", "now", "so", "and",
        "also", "but", "well", "please", "remember", "note", "important", "attention", "system",
        "assistant", "ai", "bot",
    }
)  # fmt: skip
_ADDRESS_PUNCT = frozenset(",:;-\u2014\u2013\"'\u201c\u2018()[]*>#")


def _addresses_model(text: str, start: int) -> bool:
    # Reported speech sits close to the phrase; a bounded look-back keeps hostile input linear.
    window = max(0, start - _LOOK_BACK)
    clause_start = max(window, 1 + max(text.rfind(mark, window, start) for mark in _CLAUSE_BREAKS))
    before = text[clause_start:start].rstrip()
    if not before:
        return True
    if _REPORTED.search(before):
        return False
    if before[-1] in _ADDRESS_PUNCT:
        return True
    last_word = before.rsplit(None, 1)[-1]
    return last_word in _ADDRESS_WORDS


_CLAUSE_MARKS = frozenset('.!?;:\n,("\u201c\u2014-')
_CLAUSE_WORDS = frozenset({"but", "and", "then", "so", "just", "rather"})
_LAST_WORD = re.compile(r"\w+$")


def _opens_clause(text: str, start: int) -> bool:
    """'Use the stairs instead, make sure …' ends a clause; 'Task. Instead set …' opens one."""
    i = start
    while i > 0 and not text[i - 1].isalnum():
        i -= 1
    if i == 0 or not _CLAUSE_MARKS.isdisjoint(text[i:start]):
        return True
    last = _LAST_WORD.search(text, max(0, i - 16), i)
    return last is not None and last.group(0) in _CLAUSE_WORDS


def _is_output_override(text: str) -> bool:
    if _OUTPUT.search(text):
        return True
    return any(_opens_clause(text, m.start()) for m in _INSTEAD.finditer(text))


def _is_role_change(text: str) -> bool:
    return any(_addresses_model(text, m.start()) for m in _ROLE_CHANGE.finditer(text))


# The fields of parse-task's output (SPEC §10) written as JSON keys: a sentence carrying an
# object with two of them is dictating the answer.
_OUTPUT_KEY = re.compile(
    r"[\"'\u201c]\s{0,3}(?:title|category|priority|score|level|subtasks|due\W?date|reason)"
    r"\s{0,3}[\"'\u201d]\s{0,3}:"
)


def _dictates_json(text: str) -> bool:
    keys = _OUTPUT_KEY.findall(text, 0, 4_000)
    return len(set(keys)) >= 2


def match_family(canonical: str) -> PatternType | None:
    """The first family whose English patterns match the normalised text, in the order format
    manipulation, instruction override, prompt extraction, output override; else None."""
    if _FORMAT.search(canonical):
        return PatternType.FORMAT_MANIPULATION
    if _OVERRIDE.search(canonical) or _is_role_change(canonical):
        return PatternType.INSTRUCTION_OVERRIDE
    if _EXTRACTION.search(canonical):
        return PatternType.PROMPT_EXTRACTION
    if _is_output_override(canonical) or _dictates_json(canonical):
        return PatternType.OUTPUT_OVERRIDE
    return None


def confirm_family(canonical: str) -> PatternType | None:
    """The family of the first English pattern that blocks only with the model's agreement (an
    answer's shape, a "system:" label) found in the normalised text; else None."""
    for family, pattern in _CONFIRM:
        if pattern.search(canonical):
            return family
    return None
