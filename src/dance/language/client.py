"""Asking a chat-completions language model for each action class's objects and scenes (paper §3.2.2), and on
request its temporal or entangled concepts (the LF-CBM baselines of Table 1; see :mod:`dance.language.prompts`).

:class:`ConceptDiscoveryClient` talks to any OpenAI-compatible ``/v1/chat/completions`` endpoint (OpenAI itself,
or a local Ollama / vLLM / llama.cpp server through ``base_url``) with the ``openai`` package, which is an
optional dependency (``pip install 'dance-xai[llm]'``). Every raw answer is cached on disk, keyed by everything
that determines it, so a rerun of concept discovery costs no calls and gives the same concepts.

Settings come from arguments or the environment:

============================  ======================================================================
``DANCE_LLM_BASE_URL``        endpoint, e.g. ``http://localhost:11434/v1`` (else ``OPENAI_BASE_URL``)
``DANCE_LLM_MODEL``           model name (default ``gpt-4o``)
``DANCE_LLM_API_KEY``         key (else ``OPENAI_API_KEY``; local servers need none)
============================  ======================================================================

The response body is read by this module, not by ``openai``'s models: anything that is not a chat completion —
not JSON, truncated, nested too deeply, not an object, ``choices`` not a non-empty list, no ``message`` or no
``content`` in it, content that is not text — raises :class:`MalformedResponseError` (a
:class:`~dance.errors.LanguageModelError`) with one line saying what is wrong and an excerpt of the body. It is
not retried and not cached; :meth:`ConceptDiscoveryClient.discover` records it as that class's failure and goes on
with the other classes. (``"content": null`` is an empty answer, as the OpenAI API sends it.)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dance.errors import LanguageModelError
from dance.language.parse import parse_list
from dance.language.prompts import (
    PROMPT_KINDS,
    SYSTEM_PROMPT,
    check_kinds,
    humanize_class_name,
    render_prompt,
    strict_prompt,
)
from dance.runs import atomic_write_json, stable_hash

__all__ = [
    "DEFAULT_ENDPOINT",
    "LLMSettings",
    "ConceptDiscoveryClient",
    "DiscoveryResult",
    "MalformedResponseError",
]

DEFAULT_ENDPOINT = "https://api.openai.com/v1"
"""Where requests go when no base URL is set."""

NO_KEY_PLACEHOLDER = "not-needed"
"""API key sent to a custom endpoint when none is configured (Ollama, vLLM and co. accept any key)."""

MAX_RETRY_AFTER = 60.0
"""Upper bound, in seconds, on a server's ``Retry-After`` that the client honours."""

EXCERPT_CHARS = 300

ProgressCallback = Callable[[str, int, int], None]
"""``progress(what, n, total)``: ``n`` more of ``total`` classes done (see :meth:`dance.progress.Reporter.tracker`)."""


class MalformedResponseError(LanguageModelError):
    """The endpoint answered (HTTP 2xx) with a body that is not a chat completion (see the module docstring)."""


def _env(*names: str) -> str | None:
    """The first non-empty environment variable among ``names``."""
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


@dataclass
class LLMSettings:
    """Where and how to ask the language model; unset fields are read from the environment.

    ``api_key`` defaults to ``DANCE_LLM_API_KEY``, then ``OPENAI_API_KEY``; when a ``base_url`` is set and no key
    is found, the placeholder ``"not-needed"`` is sent (local servers accept any key). ``max_retries`` counts
    retries after the first attempt; the wait before retry ``k`` (1-based) is ``backoff * 2 ** (k - 1)`` seconds.
    """

    base_url: str | None = field(default_factory=lambda: _env("DANCE_LLM_BASE_URL", "OPENAI_BASE_URL"))
    model: str = field(default_factory=lambda: _env("DANCE_LLM_MODEL") or "gpt-4o")
    api_key: str | None = field(default_factory=lambda: _env("DANCE_LLM_API_KEY", "OPENAI_API_KEY"))
    temperature: float = 0.0
    timeout: float = 60.0
    max_retries: int = 3
    backoff: float = 1.0

    def __post_init__(self) -> None:
        if self.base_url is not None:
            self.base_url = self.base_url.strip().rstrip("/") or None
        if self.api_key is not None:
            self.api_key = self.api_key.strip() or None
        if self.api_key is None and self.base_url is not None:
            self.api_key = NO_KEY_PLACEHOLDER

    @property
    def endpoint(self) -> str:
        """The base URL requests go to (the OpenAI API when none is set)."""
        return self.base_url or DEFAULT_ENDPOINT

    def validate(self) -> None:
        """Raise :class:`LanguageModelError` naming what to set when these settings cannot work."""
        if self.api_key is None and self.base_url is None:
            raise LanguageModelError(
                "no language model configured: set DANCE_LLM_API_KEY (or OPENAI_API_KEY) to use the OpenAI API, "
                "or DANCE_LLM_BASE_URL (or OPENAI_BASE_URL) to use an OpenAI-compatible server such as "
                "Ollama or vLLM (e.g. http://localhost:11434/v1); DANCE_LLM_MODEL picks the model"
            )
        if not self.model or not str(self.model).strip():
            raise LanguageModelError("no language model name: set DANCE_LLM_MODEL or LLMSettings(model=...)")
        if not self.timeout > 0:
            raise LanguageModelError(f"LLM timeout must be positive, got {self.timeout}")
        if self.max_retries < 0:
            raise LanguageModelError(f"LLM max_retries must be >= 0, got {self.max_retries}")
        if self.backoff < 0:
            raise LanguageModelError(f"LLM backoff must be >= 0, got {self.backoff}")

    def describe(self) -> dict[str, Any]:
        """The settings without the key (for logs and manifests)."""
        return {
            "endpoint": self.endpoint,
            "model": self.model,
            "temperature": self.temperature,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
        }


@dataclass
class DiscoveryResult:
    """What :meth:`ConceptDiscoveryClient.discover` found.

    ``objects`` and ``scenes`` (and ``temporal`` / ``entangled`` when those kinds were asked) map every asked
    class (as given) to its parsed items (``[]`` for a failure); a kind that was not asked stays ``{}``.
    ``kinds`` lists the kinds asked, in order. ``failures`` holds one dict per class and prompt whose answers
    held no list even after the stricter follow-up: ``class``, ``kind`` (``"objects"``, ``"scenes"``, …),
    ``reason`` and ``answer`` (an excerpt of the last raw answer). ``calls`` counts requests sent over the
    network (retries included), ``cached`` the answers read from the cache instead.
    """

    objects: dict[str, list[str]] = field(default_factory=dict)
    scenes: dict[str, list[str]] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    calls: int = 0
    cached: int = 0
    temporal: dict[str, list[str]] = field(default_factory=dict)
    entangled: dict[str, list[str]] = field(default_factory=dict)
    kinds: tuple[str, ...] = PROMPT_KINDS

    @property
    def ok(self) -> bool:
        """True when every class got a list for every asked kind."""
        return not self.failures

    def lists(self, kind: str) -> dict[str, list[str]]:
        """Parsed items per class for one prompt kind (``{}`` when the kind was not asked)."""
        check_kinds((kind,))
        return getattr(self, kind)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable copy (``temporal`` / ``entangled`` only when asked)."""
        out: dict[str, Any] = {
            "objects": {k: list(v) for k, v in self.objects.items()},
            "scenes": {k: list(v) for k, v in self.scenes.items()},
        }
        for kind in ("temporal", "entangled"):
            if kind in self.kinds:
                out[kind] = {k: list(v) for k, v in getattr(self, kind).items()}
        if tuple(self.kinds) != PROMPT_KINDS:
            out["kinds"] = list(self.kinds)
        return out | {"failures": [dict(f) for f in self.failures], "calls": self.calls, "cached": self.cached}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DiscoveryResult:
        """Inverse of :meth:`to_json`."""
        return cls(
            objects={k: list(v) for k, v in d.get("objects", {}).items()},
            scenes={k: list(v) for k, v in d.get("scenes", {}).items()},
            failures=[dict(f) for f in d.get("failures", [])],
            calls=int(d.get("calls", 0)),
            cached=int(d.get("cached", 0)),
            temporal={k: list(v) for k, v in d.get("temporal", {}).items()},
            entangled={k: list(v) for k, v in d.get("entangled", {}).items()},
            kinds=tuple(d.get("kinds", PROMPT_KINDS)),
        )


def _import_openai() -> Any:
    try:
        import openai
    except ImportError as e:
        raise LanguageModelError(
            "concept discovery needs the 'openai' package, which is not installed: "
            "pip install 'dance-xai[llm]'"
        ) from e
    return openai


def _excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ConceptDiscoveryClient:
    """Asks an OpenAI-compatible chat model the paper's two concept prompts per action class, with a cache.

    ``cache_dir`` (optional) holds one JSON file per raw answer, named by :meth:`cache_key`; a cached answer
    costs no call. Requests are retried with exponential backoff on timeouts, connection errors, HTTP 429 and
    5xx; any other HTTP error fails at once. :attr:`calls` and :attr:`cached` count over the client's life.
    """

    def __init__(
        self,
        settings: LLMSettings | None = None,
        cache_dir: Path | str | None = None,
        *,
        system_prompt: str = SYSTEM_PROMPT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings if settings is not None else LLMSettings()
        self.settings.validate()
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        self.system_prompt = system_prompt
        self.calls = 0
        self.cached = 0
        self._sleep = sleep
        self._openai = _import_openai()
        try:
            self._client = self._openai.OpenAI(
                base_url=self.settings.endpoint,
                api_key=self.settings.api_key,
                timeout=float(self.settings.timeout),
                max_retries=0,  # retries are ours: see _complete
            )
        except self._openai.OpenAIError as e:
            raise LanguageModelError(f"cannot create the LLM client for {self.settings.endpoint}: {e}") from e
        except TypeError as e:  # openai < 1.55.3 passes `proxies`, which httpx >= 0.28 no longer accepts
            version = getattr(self._openai, "__version__", "?")
            raise LanguageModelError(
                f"the installed openai {version} does not work with the installed httpx ({e}): "
                "pip install -U openai"
            ) from e

    def close(self) -> None:
        """Close the underlying HTTP connections."""
        self._client.close()

    def __enter__(self) -> ConceptDiscoveryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ one prompt

    def cache_key(self, prompt: str) -> str:
        """Hash of everything that determines the answer to ``prompt``."""
        s = self.settings
        return stable_hash(
            {
                "model": s.model,
                "base_url": s.base_url,
                "system": self.system_prompt,
                "prompt": prompt,
                "temperature": s.temperature,
            }
        )

    def ask(self, prompt: str) -> str:
        """The model's raw answer to ``prompt`` (from the cache when present, else one chat-completions call)."""
        key = self.cache_key(prompt)
        answer = self._read_cache(key)
        if answer is not None:
            self.cached += 1
            return answer
        answer = self._complete(prompt)
        self._write_cache(key, prompt, answer)
        return answer

    def _cache_path(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / f"{key}.json"

    def _read_cache(self, key: str) -> str | None:
        path = self._cache_path(key)
        if path is None or not path.is_file():
            return None
        try:
            with open(path, encoding="utf-8") as f:
                record = json.load(f)
        except (OSError, ValueError):
            return None  # unreadable or half-written by an older version: ask again and overwrite
        answer = record.get("answer") if isinstance(record, dict) else None
        return answer if isinstance(answer, str) else None

    def _write_cache(self, key: str, prompt: str, answer: str) -> None:
        path = self._cache_path(key)
        if path is None:
            return
        s = self.settings
        record = {
            "model": s.model,
            "base_url": s.base_url,
            "temperature": s.temperature,
            "system": self.system_prompt,
            "prompt": prompt,
            "answer": answer,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        try:
            atomic_write_json(path, record)
        except OSError as e:
            raise LanguageModelError(f"cannot write the LLM answer cache {path}: {e}") from e

    def _complete(self, prompt: str) -> str:
        """One chat completion with our own retries; raises :class:`LanguageModelError` when it cannot get one."""
        openai = self._openai
        s = self.settings
        messages = [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": prompt}]
        attempts = s.max_retries + 1
        last_error = "no attempt made"
        for attempt in range(attempts):
            self.calls += 1
            retry_after = 0.0
            try:
                response = self._client.chat.completions.with_raw_response.create(
                    model=s.model, messages=messages, temperature=s.temperature
                )
                body = response.text
            except openai.APITimeoutError:
                last_error = f"no answer within the {s.timeout:g} s timeout"
            except openai.APIConnectionError as e:
                cause = f" ({e.__cause__})" if e.__cause__ is not None else ""
                last_error = f"connection error: {e}{cause}"
            except openai.APIStatusError as e:
                status = int(e.status_code)
                last_error = f"HTTP {status}: {_excerpt(str(e))}"
                if status != 429 and status < 500:
                    raise LanguageModelError(
                        f"LLM request to {s.endpoint} (model {s.model}) was rejected, not retrying: {last_error}"
                    ) from e
                retry_after = _retry_after(e)
            except openai.OpenAIError as e:
                raise LanguageModelError(
                    f"LLM request to {s.endpoint} (model {s.model}) failed: {type(e).__name__}: {_excerpt(str(e))}"
                ) from e
            else:
                return self._content(body)
            if attempt + 1 < attempts:
                self._sleep(max(s.backoff * 2**attempt, retry_after))
        raise LanguageModelError(
            f"LLM request to {s.endpoint} (model {s.model}) failed after {attempts} attempt"
            f"{'s' if attempts != 1 else ''}: {last_error}"
        )

    def _content(self, body: str) -> str:
        """The assistant text of a chat-completions response body (``""`` when its content is ``null``).

        Raises :class:`MalformedResponseError` for any body that is not a chat completion.
        """
        try:
            return answer_text(body)
        except MalformedResponseError as e:
            s = self.settings
            raise MalformedResponseError(
                f"{s.endpoint} (model {s.model}) sent a malformed chat-completions response: {e}; "
                f"body: {_excerpt(body, 120)!r}"
            ) from None

    # ------------------------------------------------------------------ all classes

    def ask_list(self, prompt: str) -> tuple[list[str], str]:
        """Parsed items of ``prompt``'s answer, asking once more strictly when it holds no list; and the last answer."""
        answer = self.ask(prompt)
        items = parse_list(answer)
        if not items:
            answer = self.ask(strict_prompt(prompt))
            items = parse_list(answer)
        return items, answer

    def discover(self, classes: Sequence[str], progress: ProgressCallback | None = None,
                 kinds: Sequence[str] = PROMPT_KINDS) -> DiscoveryResult:
        """Concepts of every class for each requested prompt kind (duplicate classes asked once).

        ``kinds`` defaults to the paper's two (``objects``, ``scenes``); ``temporal`` and ``entangled`` are asked
        only when listed (the LF-CBM baselines). Only the requested kinds are sent, one prompt per class and kind,
        in the order of ``kinds``. A class/prompt whose answers hold no list, or whose response is malformed
        (:class:`MalformedResponseError`), is recorded in :attr:`DiscoveryResult.failures` with the reason and the
        other classes go on; an endpoint that cannot be reached raises
        :class:`LanguageModelError` (answers obtained so far stay cached, so a rerun resumes).
        """
        if isinstance(classes, str):
            raise LanguageModelError("discover() takes a sequence of class names, not a single string")
        kinds = check_kinds(kinds)
        unique = list(dict.fromkeys(classes))
        for name in unique:
            humanize_class_name(name)  # reject unusable names before any call
        result = DiscoveryResult(kinds=kinds)
        calls0, cached0 = self.calls, self.cached
        try:
            for name in unique:
                for kind in kinds:
                    reason = "no list found in the answer, even after asking for one item per line"
                    try:
                        items, answer = self.ask_list(render_prompt(kind, name))
                    except MalformedResponseError as e:
                        items, answer, reason = [], "", str(e)
                    getattr(result, kind)[name] = items
                    if not items:
                        result.failures.append(
                            {"class": name, "kind": kind, "reason": reason, "answer": _excerpt(answer)}
                        )
                if progress is not None:
                    progress("concept discovery", 1, len(unique))
        finally:
            result.calls = self.calls - calls0
            result.cached = self.cached - cached0
        return result


def answer_text(body: str) -> str:
    """The assistant text of a chat-completions response body, checked step by step.

    Raises :class:`MalformedResponseError` (saying what is wrong, without the body) when ``body`` is not JSON, is
    truncated or nested too deeply, or lacks ``choices[0].message.content`` as text. ``content`` may be ``null``
    (``""``) or a list of ``{"type": "text", "text": ...}`` parts (joined).
    """
    try:
        data = json.loads(body)
    except RecursionError:
        raise MalformedResponseError("its JSON is nested too deeply") from None
    except ValueError as e:
        pos, msg = getattr(e, "pos", None), str(getattr(e, "msg", e))
        if not body.strip():
            what = "the body is empty"
        elif msg.startswith("Unterminated") or (pos is not None and pos >= len(body.rstrip())):
            what = f"the JSON is cut off after {len(body)} characters (truncated)"
        else:
            what = f"not JSON ({msg}" + (f", character {pos} of {len(body)})" if pos is not None else ")")
        raise MalformedResponseError(what) from None
    if not isinstance(data, dict):
        raise MalformedResponseError(f"the body is a JSON {_json_kind(data)}, not an object")
    if "choices" not in data:
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            raise MalformedResponseError(f'no "choices" but an error: {_excerpt(error["message"], 120)}')
        raise MalformedResponseError('no "choices" in the body')
    choices = data["choices"]
    if not isinstance(choices, list):
        raise MalformedResponseError(f'"choices" is a JSON {_json_kind(choices)}, not a list')
    if not choices:
        raise MalformedResponseError('"choices" is empty')
    first = choices[0]
    if not isinstance(first, dict) or not isinstance(first.get("message"), dict):
        raise MalformedResponseError('choices[0] has no "message" object')
    message = first["message"]
    if "content" not in message:
        raise MalformedResponseError('the message has no "content"')
    content = message["content"]
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list) and all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in content):
        return "".join(p["text"] for p in content)
    raise MalformedResponseError(f"the message content is a JSON {_json_kind(content)}, not text")


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {str: "string", list: "array", dict: "object", int: "number", float: "number"}.get(type(value), "value")


def _retry_after(error: Any) -> float:
    """Seconds a 429/5xx response asks us to wait (``Retry-After``), bounded by :data:`MAX_RETRY_AFTER`."""
    try:
        value = error.response.headers.get("retry-after")
        seconds = float(value) if value is not None else 0.0
    except (AttributeError, TypeError, ValueError):
        return 0.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
