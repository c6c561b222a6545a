"""Reading a list of concept names out of a language model's free-form answer.

Language models rarely answer with exactly one item per line, even when asked to. :func:`parse_list` accepts
the shapes they produce in practice:

* numbered lists (``1. ball``, ``1) ball``, ``(1) ball``, ``a) ball``), bullets (``-``, ``*``, ``•``, ...), also
  nested under category headers (``1. **Equipment:**`` followed by indented bullets: the header is dropped);
* comma- or semicolon-separated lines (``ball, racket, and net``), possibly after an introduction
  (``The objects are: ball, racket, net.``);
* JSON arrays and objects holding a list (``{"objects": [...]}``), bare, inside ```` ```json ```` fences or
  embedded in prose;
* markdown emphasis (``**Ball**: used to hit ...`` gives ``ball``): explanations after ``:``, `` - ``, `` – ``
  or ``—`` are dropped, as are parenthetical remarks, ``e.g.``/``such as`` tails, quotes, trailing periods and
  leading articles;
* prose around the list (``Sure! Here are ...:`` / ``Let me know if ...``), markdown headings and tables.

Items come back lower-cased, stripped and de-duplicated (case-insensitively) in the order of the answer. An
answer holding no list at all gives ``[]``; what to do then is the caller's decision.

Any string is accepted, whatever a broken or hostile server sends: NUL bytes and other control characters are
removed from items, and parsing takes time linear in the answer's length and never recurses — JSON is looked for
only in text nested at most :data:`MAX_JSON_DEPTH` brackets deep, the search for JSON embedded in prose gives up
after a fixed multiple of the text's length (falling back to reading lines), and parentheses are removed in one
pass. ``parse_list`` raises nothing for a ``str`` and returns ``[]`` for anything else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["parse_list", "clean_item"]

MAX_WORDS = 8
"""Items longer than this many words are sentences, not concept names, and are dropped."""

MAX_JSON_DEPTH = 32
"""Text nested deeper than this (``[`` / ``{``) is never decoded as JSON (no answer nests a list of names so deep;
``json`` would recurse on it)."""

JSON_SEARCH_EFFORT = 64
"""The search for JSON embedded in prose stops after failed decode attempts have read this many times the
answer's length (each failed attempt may read up to the end of its value: without a bound, text full of ``[``
would take quadratic time)."""

_NUMBER_MARKER = r"\(?\d{1,3}[.)\]:](?!\d)"
_LETTER_MARKER = r"\(?[a-zA-Z][.)](?=\s)"
_BULLET_MARKER = r"[-*+](?=\s)|[•·●▪‣◦○■□➤►✓✔→]"
_MARKER = re.compile(rf"^\s*(?:{_NUMBER_MARKER}|{_LETTER_MARKER}|{_BULLET_MARKER})\s*")
_INLINE_NUMBERS = re.compile(r"(?<!\s)\s+(?=\d{1,2}[.)]\s+\S)")  # (?<!\s): no quadratic retries in blank runs
# The fence's header (language tag) is matched atomically, (?=(...))\1, so a fence that is never closed costs one
# scan to the end of the text rather than one per way of splitting its header.
_FENCE = re.compile(r"```(?=([ \t]*[A-Za-z0-9_+-]*[ \t]*\n?))\1(.*?)```", re.DOTALL)
_FENCE_LINE = re.compile(r"^\s*```")
_HEADING = re.compile(r"^\s*#{1,6}\s")
_TABLE_SEPARATOR = re.compile(r"[\s:|-]+")  # fullmatch: a row of pipes, dashes, colons and blanks
_BOLD_HEAD = re.compile(r"^\s*(\*\*|__)(.+?)\1")
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(_OPENERS.values())
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_EXPLANATION = re.compile(r":|\s+[-–]{1,2}\s+|\s*—\s*|\s+–")
_EXAMPLES = re.compile(r",?\s+(?:e\.g\.|eg\.|i\.e\.|ie\.|such as|including|like)\s.*$|,?\s*e\.g\..*$|,?\s*i\.e\..*$")
_ETC = re.compile(r",?\s*(?:etc\.?|and so on|and more|and others)\s*$")
_LEADING_WORDS = re.compile(r"^(?:(?:and|or|also|plus)\s+)?(?:(?:a|an|the|some|various)\s+)?", re.IGNORECASE)
_QUOTES = "\"'`“”‘’«»"
_STRIP_CHARS = " \t.,;:!?…" + _QUOTES
_LETTER = re.compile(r"[^\W\d_]")
_STOP_ITEMS = frozenset(
    {"etc", "others", "other", "more", "and more", "and so on", "n/a", "na", "none", "nothing", "misc", "various"}
)
# Words that mark a fragment of an unmarked (no bullets, no numbers) answer as a sentence rather than an item.
_PROSE_WORDS = frozenset(
    """i i'm i've i'd i'll me my we we're our us you you're your sorry sure certainly okay ok here there's please
    is are was were be been being can't cannot could would should will won't may might must let hope
    these this that it its it's they them typically usually commonly often following
    depends depending help helps glad happy""".split()
)
_JSON_NAME_KEYS = ("name", "item", "object", "scene", "place", "location", "concept", "label", "title")


def parse_list(text: str) -> list[str]:
    """The items of the list in a language model's answer: lower-cased, stripped, de-duplicated, in order.

    JSON (an array, or an object with a list value; bare, fenced or embedded in prose) is preferred when the
    answer holds any; otherwise the answer is read line by line: when some lines carry list markers (numbers,
    bullets) only those lines are items, else every line that is not prose is an item or a comma/semicolon
    separated run of items. An answer without any list gives ``[]``.
    """
    if not isinstance(text, str) or not text.strip():
        return []
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    items = _from_json(text)
    if not items:
        items = _from_lines(text)
    return _dedupe(items)


def clean_item(raw: str) -> str:
    """One item reduced to its name: markdown, explanations, parentheses, quotes and articles removed.

    Returns ``""`` when nothing that looks like a concept name remains (no letters, a filler word such as
    ``etc.``, or a sentence of more than :data:`MAX_WORDS` words).
    """
    s = _CONTROL.sub("", " ".join(raw.split())).replace("`", "")  # one blank between words; no NUL, no controls
    bold = _BOLD_HEAD.match(s)
    if bold is not None:
        rest = s[bold.end():].lstrip()
        if not rest or rest[0] in ":-–—(,.;" or rest.startswith(("- ", "– ")):
            s = bold.group(2)
    s = s.replace("**", "").replace("__", "").replace("*", "")
    s = _drop_parenthesised(s)
    s = _EXPLANATION.split(s, maxsplit=1)[0]
    s = _EXAMPLES.sub("", s)
    s = _ETC.sub("", s)
    s = s.strip(_STRIP_CHARS)
    s = _LEADING_WORDS.sub("", s)
    s = " ".join(s.split()).strip(_STRIP_CHARS).lower()
    if not s or not _LETTER.search(s) or s in _STOP_ITEMS or len(s.split()) > MAX_WORDS:
        return ""
    return s


# ------------------------------------------------------------------ JSON


def _drop_parenthesised(s: str) -> str:
    """``s`` without its (nested) ``(...)`` / ``[...]`` / ``{...}`` groups, each replaced by a blank, cut at an
    opening bracket that is never closed (it starts a remark), closing brackets without an opener dropped. One
    pass with a stack: linear in ``len(s)``."""
    out: list[str] = []
    stack: list[tuple[str, int]] = []  # (expected closer, where the group starts in out)
    for ch in s:
        if ch in _OPENERS:
            stack.append((_OPENERS[ch], len(out)))
            out.append(ch)
        elif ch in _CLOSERS:
            if stack and stack[-1][0] == ch:
                _, at = stack.pop()
                del out[at:]
            out.append(" ")  # a closing bracket without its opener is dropped too
        else:
            out.append(ch)
    if stack:
        del out[stack[0][1]:]
    return "".join(out)


def _max_depth(text: str) -> int:
    """How deep ``[`` / ``{`` nest in ``text`` (strings not told apart: an upper bound for JSON values)."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}" and depth:
            depth -= 1
    return deepest


def _loads(text: str) -> Any:
    """``json.loads(text)``, or ``None`` for text that is not JSON or nests deeper than :data:`MAX_JSON_DEPTH`."""
    if _max_depth(text) > MAX_JSON_DEPTH:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _from_json(text: str) -> list[str]:
    """Items of the first JSON value holding strings: fenced blocks first, then the whole text, then embedded."""
    candidates = [body for _, body in _FENCE.findall(text)]
    candidates.append(text)
    for candidate in candidates:
        value = _loads(candidate.strip())
        if value is not None:
            items = _json_items(value)
            if items:
                return items
    return _embedded_json(text)


def _embedded_json(text: str) -> list[str]:
    if _max_depth(text) > MAX_JSON_DEPTH:
        return []
    decoder = json.JSONDecoder()
    budget = JSON_SEARCH_EFFORT * len(text)
    pos = 0
    while budget > 0:
        starts = [i for i in (text.find("[", pos), text.find("{", pos)) if i >= 0]
        if not starts:
            return []
        start = min(starts)
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError as e:
            budget -= max(e.pos - start, 1)
            pos = start + 1
            continue
        except (ValueError, RecursionError):
            budget -= len(text) - start
            pos = start + 1
            continue
        items = _json_items(value)
        if items:
            return items
        pos = max(end, start + 1)
    return []


def _json_items(value: Any) -> list[str]:
    """Strings of a decoded JSON value: a list's strings (or names of its objects, items of its lists), an object's
    list values (or its string values / keys). Iterative (an explicit stack), in the order of the value."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, list):
            pending: list[Any] = []
            for element in v:
                if isinstance(element, (str, list)):
                    pending.append(element)
                elif isinstance(element, dict):
                    name = _json_name(element)
                    if name:
                        pending.append(name)
            stack.extend(reversed(pending))
        elif isinstance(v, dict):
            lists = [x for x in v.values() if isinstance(x, (list, dict))]
            if lists:
                stack.extend(reversed(lists))
                continue
            strings = {k: x for k, x in v.items() if isinstance(x, str)}
            if strings and all(str(k).strip().isdigit() for k in strings):
                out.extend(strings.values())  # {"1": "ball", "2": "racket"}
            elif strings and len(strings) == len(v):
                out.extend(str(k) for k in strings)  # {"ball": "used to hit", ...}
    return out


def _json_name(obj: dict[str, Any]) -> str | None:
    lowered = {str(k).lower(): v for k, v in obj.items()}
    for key in _JSON_NAME_KEYS:
        if isinstance(lowered.get(key), str):
            return lowered[key]
    for v in obj.values():
        if isinstance(v, str):
            return v
    return None


# ------------------------------------------------------------------ lines


def _indent(line: str) -> int:
    return len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())


def _from_lines(text: str) -> list[str]:
    lines: list[str] = []
    for line in text.split("\n"):
        if _FENCE_LINE.match(line) or _HEADING.match(line) or not line.strip():
            continue
        if _MARKER.match(line) and _INLINE_NUMBERS.search(line):  # "1. ball 2. racket 3. net"
            lines.extend(_INLINE_NUMBERS.split(line))
        else:
            lines.append(line)
    table = _table_items(lines)
    if table:
        return table
    marked = [(i, line) for i, line in enumerate(lines) if _MARKER.match(line)]
    if marked:
        return _marked_items(marked)
    return _unmarked_items(lines)


def _marked_items(marked: list[tuple[int, str]]) -> list[str]:
    """Items of the lines that carry a list marker; category headers of nested lists are skipped."""
    out: list[str] = []
    for n, (_, line) in enumerate(marked):
        body = _MARKER.sub("", line, count=1).strip()
        following = marked[n + 1][1] if n + 1 < len(marked) else None
        bare = body.replace("*", "").replace("_", "").strip()
        if bare.endswith(":") and following is not None and _indent(following) > _indent(line):
            continue  # "1. **Equipment:**" heading an indented sub-list
        parts = re.split(r"[,;]", body)
        if len(parts) < 3 or not _is_inline_list(body):
            parts = parts[:1]  # "Racket, the main tool" → "Racket"
        for part in parts:
            item = clean_item(part)
            if item:
                out.append(item)
    return out


def _unmarked_items(lines: Iterable[str]) -> list[str]:
    """Items of an answer without list markers: one item per line or comma/semicolon runs; prose is skipped."""
    out: list[str] = []
    for line in lines:
        line = line.strip()
        if ":" in line:
            head, tail = line.split(":", 1)
            if not tail.strip(" *_"):
                continue  # "Here are the objects:" introduces what follows
            if _is_prose(head) or (not _BOLD_HEAD.match(head) and _is_inline_list(tail)):
                line = tail  # "The objects are: ball, racket, net." / "Objects: ball, racket"
            else:
                line = head  # "**Ball**: used to hit, serve ..." / "Ball: used to hit the ball"
        parts = re.split(r"[,;]", line)
        if len(parts) == 1 and re.search(r"[.!?]\s*$", line) and len(line.split()) >= 5:
            continue  # a whole sentence
        for part in parts:
            if _is_prose(part):
                continue
            item = clean_item(part)
            if item:
                out.append(item)
    return out


def _is_inline_list(text: str) -> bool:
    """Whether ``text`` is a comma/semicolon run of short names (not an explanation that contains a comma)."""
    parts = [p for p in re.split(r"[,;]", text) if p.strip(_STRIP_CHARS)]
    return len(parts) >= 2 and all(len(p.split()) <= 4 and not _is_prose(p) for p in parts)


def _is_prose(fragment: str) -> bool:
    words = re.findall(r"[a-z']+", fragment.lower().replace("’", "'"))
    return any(w in _PROSE_WORDS for w in words) or "!" in fragment or "?" in fragment


def _table_items(lines: list[str]) -> list[str]:
    """First-column items of a markdown table (header row skipped), or ``[]`` when there is no table."""
    rows = [line for line in lines if line.strip().startswith("|")]
    if len(rows) < 2 or not any(_TABLE_SEPARATOR.fullmatch(r) for r in rows):
        return []
    out: list[str] = []
    seen_separator = False
    for row in rows:
        if _TABLE_SEPARATOR.fullmatch(row):
            seen_separator = True
            continue
        if not seen_separator:
            continue  # header
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        first = next((c for c in cells if c and not c.isdigit()), "")
        item = clean_item(first)
        if item:
            out.append(item)
    return out


def _dedupe(items: Iterable[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for raw in items:
        item = clean_item(raw)
        if item and item not in seen:
            seen.add(item)
            out.append(item)
    return out
