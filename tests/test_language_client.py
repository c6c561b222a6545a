"""ConceptDiscoveryClient against a scripted OpenAI-compatible server on 127.0.0.1 (no network needed).

Each test starts its own :class:`FakeLLM`: a ``ThreadingHTTPServer`` on port 0 in a daemon thread that answers
``POST /v1/chat/completions`` from a queue of scripted :class:`Reply` objects (or a function of the request),
records every request, and is shut down by the fixture (and by a watchdog timer at the latest).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("openai")

from fake_llm import FakeLLM, Reply, isolate_llm_env  # noqa: E402

from dance.errors import DanceError, LanguageModelError  # noqa: E402
from dance.language.client import ConceptDiscoveryClient, DiscoveryResult, LLMSettings  # noqa: E402
from dance.language.prompts import (  # noqa: E402
    OBJECT_PROMPT_TEMPLATE,
    SCENE_PROMPT_TEMPLATE,
    STRICT_INSTRUCTION,
    SYSTEM_PROMPT,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_llm_env(monkeypatch)


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    server = FakeLLM().start()
    try:
        yield server
    finally:
        server.close()


def make_client(llm: FakeLLM, cache_dir: Path | None = None, **kw: Any) -> ConceptDiscoveryClient:
    settings = LLMSettings(
        base_url=llm.base_url,
        model=kw.pop("model", "test-model"),
        api_key=kw.pop("api_key", None),
        timeout=kw.pop("timeout", 5.0),
        max_retries=kw.pop("max_retries", 2),
        backoff=kw.pop("backoff", 0.01),
        **kw,
    )
    return ConceptDiscoveryClient(settings, cache_dir)


def by_prompt(objects: str, scenes: str) -> Callable[[dict[str, Any]], Reply]:
    """A responder giving ``objects`` to object prompts and ``scenes`` to scene prompts."""

    def respond(body: dict[str, Any]) -> Reply:
        prompt = body["messages"][-1]["content"]
        return Reply(objects if "physical objects" in prompt else scenes)

    return respond


# ------------------------------------------------------------------ answers


def test_good_numbered_answer(llm: FakeLLM) -> None:
    llm.script(Reply("1. Tennis racket\n2. Tennis ball\n3. Net"), Reply("1. Tennis court\n2. Stadium"))
    result = make_client(llm).discover(["tennis_serve"])
    assert result.objects == {"tennis_serve": ["tennis racket", "tennis ball", "net"]}
    assert result.scenes == {"tennis_serve": ["tennis court", "stadium"]}
    assert result.failures == [] and result.ok
    assert result.calls == 2 and result.cached == 0
    assert len(llm.requests) == 2


def test_messy_prose_answer_parses(llm: FakeLLM) -> None:
    objects = (
        "Sure! Here are the most important physical objects for a tennis serve:\n\n"
        "1. **Tennis Racket**: the player swings it to hit the ball.\n"
        "2. **Tennis Ball** - tossed in the air before being struck.\n"
        "3. **Net** (the ball must clear it)\n\n"
        "Let me know if you need more details!"
    )
    scenes = 'Here you go:\n```json\n{"scenes": ["Outdoor tennis court", "Indoor tennis court", "Stadium"]}\n```'
    llm.script(Reply(objects), Reply(scenes))
    result = make_client(llm).discover(["TennisServe"])
    assert result.objects["TennisServe"] == ["tennis racket", "tennis ball", "net"]
    assert result.scenes["TennisServe"] == ["outdoor tennis court", "indoor tennis court", "stadium"]
    assert result.calls == 2


def test_answer_without_list_gets_stricter_follow_up(llm: FakeLLM) -> None:
    llm.script(
        Reply("A tennis serve is the shot that starts every point in a tennis match."),
        Reply("Tennis racket\nTennis ball"),
        Reply("- Tennis court"),
    )
    result = make_client(llm).discover(["tennis_serve"])
    assert result.objects["tennis_serve"] == ["tennis racket", "tennis ball"]
    assert result.scenes["tennis_serve"] == ["tennis court"]
    assert result.failures == []
    prompts = llm.prompts()
    assert len(prompts) == 3 and result.calls == 3
    assert prompts[1].startswith(prompts[0]) and STRICT_INSTRUCTION in prompts[1]
    assert "one item per line, nothing else" in prompts[1]


def test_answer_without_list_twice_is_a_reported_failure(llm: FakeLLM) -> None:
    def respond(body: dict[str, Any]) -> Reply:
        prompt = body["messages"][-1]["content"]
        if "physical objects" in prompt and "golf" in prompt:
            return Reply("I'm sorry, but I can't help with that request.")
        return Reply("ball\nclub" if "physical objects" in prompt else "course")

    llm.responder = respond
    result = make_client(llm).discover(["golf_swing", "hockey"])
    assert not result.ok
    assert result.failures == [
        {
            "class": "golf_swing",
            "kind": "objects",
            "reason": "no list found in the answer, even after asking for one item per line",
            "answer": "I'm sorry, but I can't help with that request.",
        }
    ]
    assert result.objects == {"golf_swing": [], "hockey": ["ball", "club"]}  # the other class went on
    assert result.scenes == {"golf_swing": ["course"], "hockey": ["course"]}
    assert result.calls == 5  # 2 for golf objects, 1 each for the rest


def test_empty_content_counts_as_no_list(llm: FakeLLM) -> None:
    llm.script(Reply(None), Reply("racket"), Reply(""), Reply("court"))
    result = make_client(llm).discover(["tennis"])
    assert result.objects == {"tennis": ["racket"]} and result.scenes == {"tennis": ["court"]}
    assert result.calls == 4


# ------------------------------------------------------------------ retries


def test_server_error_then_success_is_retried(llm: FakeLLM) -> None:
    llm.script(Reply(status=500), Reply(status=503), Reply("- ball"))
    client = make_client(llm, max_retries=2)
    assert client.ask("anything") == "- ball"
    assert client.calls == 3 and len(llm.requests) == 3


def test_server_error_forever_fails_after_max_retries(llm: FakeLLM) -> None:
    llm.responder = lambda body: Reply(status=500)
    client = make_client(llm, max_retries=2)
    with pytest.raises(LanguageModelError) as info:
        client.discover(["tennis_serve"])
    message = str(info.value)
    assert llm.base_url in message and "test-model" in message
    assert "after 3 attempts" in message and "HTTP 500" in message
    assert len(llm.requests) == 3
    assert isinstance(info.value, DanceError)


def test_slow_answer_times_out_is_retried_then_fails(llm: FakeLLM) -> None:
    llm.responder = lambda body: Reply("ball", delay=2.0)
    client = make_client(llm, timeout=0.5, max_retries=1)
    start = time.monotonic()
    with pytest.raises(LanguageModelError) as info:
        client.ask("objects?")
    elapsed = time.monotonic() - start
    assert "timeout" in str(info.value) and llm.base_url in str(info.value)
    assert len(llm.requests) == 2 and client.calls == 2
    assert elapsed < 1.9  # neither attempt waited for the 2 s answer


def test_slow_answer_then_fast_answer_succeeds(llm: FakeLLM) -> None:
    llm.script(Reply("late", delay=2.0), Reply("1. ball"))
    client = make_client(llm, timeout=0.5, max_retries=1)
    assert client.ask("objects?") == "1. ball"
    assert len(llm.requests) == 2


def test_rate_limit_is_retried(llm: FakeLLM) -> None:
    llm.script(
        Reply(status=429, headers={"Retry-After": "0"}, body={"error": {"message": "Rate limit", "type": "requests"}}),
        Reply("ball, racket"),
    )
    client = make_client(llm, max_retries=1)
    assert client.ask("objects?") == "ball, racket"
    assert len(llm.requests) == 2


def test_backoff_grows_exponentially(llm: FakeLLM) -> None:
    llm.script(Reply(status=500), Reply(status=500), Reply(status=429), Reply("ok"))
    waits: list[float] = []
    settings = LLMSettings(base_url=llm.base_url, model="m", max_retries=3, backoff=0.5)
    client = ConceptDiscoveryClient(settings, None, sleep=waits.append)
    assert client.ask("q") == "ok"
    assert waits == [0.5, 1.0, 2.0]


def test_bad_request_is_not_retried(llm: FakeLLM) -> None:
    llm.script(
        Reply(status=400, body={"error": {"message": "model 'nope' not found", "type": "invalid_request_error"}}),
        Reply("never sent"),
    )
    client = make_client(llm, max_retries=3)
    with pytest.raises(LanguageModelError) as info:
        client.ask("objects?")
    message = str(info.value)
    assert "HTTP 400" in message and "not retrying" in message and llm.base_url in message
    assert "model 'nope' not found" in message
    assert len(llm.requests) == 1


def test_unreachable_endpoint_names_it(tmp_path: Path) -> None:
    server = FakeLLM()  # bound but never served, then closed: nothing listens on the port
    url = server.base_url
    server.server.server_close()
    client = ConceptDiscoveryClient(LLMSettings(base_url=url, model="m", max_retries=1, backoff=0.0, timeout=2.0))
    with pytest.raises(LanguageModelError) as info:
        client.ask("q")
    assert url in str(info.value) and "connection error" in str(info.value)
    assert client.calls == 2


# ------------------------------------------------------------------ cache


def test_cache_makes_second_discover_free(llm: FakeLLM, tmp_path: Path) -> None:
    llm.responder = by_prompt("1. racket\n2. ball", "- court")
    cache = tmp_path / "llm-cache"
    first = make_client(llm, cache).discover(["tennis_serve", "TennisSwing"])
    assert first.calls == 4 and first.cached == 0
    n_requests = len(llm.requests)
    assert len(list(cache.glob("*.json"))) == 4
    assert not list(cache.glob(".*.tmp"))

    second = make_client(llm, cache).discover(["tennis_serve", "TennisSwing"])  # a fresh client, same cache
    assert len(llm.requests) == n_requests
    assert second.calls == 0 and second.cached == 4
    assert second.objects == first.objects and second.scenes == first.scenes

    record = json.loads(next(cache.glob("*.json")).read_text(encoding="utf-8"))
    assert {"model", "base_url", "system", "prompt", "temperature", "answer"} <= set(record)

    other_model = make_client(llm, cache, model="other-model").discover(["tennis_serve"])
    assert other_model.calls == 2  # the model is part of the key


def test_cache_keeps_strict_follow_up_and_ignores_corrupt_files(llm: FakeLLM, tmp_path: Path) -> None:
    llm.script(Reply("Happy to help!"), Reply("racket"), Reply("court"))
    client = make_client(llm, tmp_path)
    assert client.discover(["tennis"]).calls == 3
    again = make_client(llm, tmp_path).discover(["tennis"])
    assert again.calls == 0 and again.cached == 3  # first answer, strict answer, scenes answer

    key = client.cache_key("question")
    (tmp_path / f"{key}.json").write_text("{ half written", encoding="utf-8")
    llm.script(Reply("fresh"))
    assert client.ask("question") == "fresh"
    assert json.loads((tmp_path / f"{key}.json").read_text(encoding="utf-8"))["answer"] == "fresh"


def test_no_cache_dir_always_asks(llm: FakeLLM) -> None:
    llm.responder = lambda body: Reply("ball")
    with make_client(llm, None) as client:
        client.ask("q")
        client.ask("q")
    assert len(llm.requests) == 2 and client.cached == 0


# ------------------------------------------------------------------ requests


def test_request_carries_model_and_both_prompts_with_humanised_names(llm: FakeLLM) -> None:
    llm.responder = by_prompt("ball", "court")
    classes = ["tennis_serve", "ApplyEyeMakeup", "playing guitar", "tennis_serve"]
    result = make_client(llm, api_key="sk-test").discover(classes)
    assert list(result.objects) == ["tennis_serve", "ApplyEyeMakeup", "playing guitar"]
    bodies = [r["body"] for r in llm.requests]
    assert {b["model"] for b in bodies} == {"test-model"}
    assert all(b["temperature"] == 0.0 for b in bodies)
    assert all(b["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT} for b in bodies)
    assert all(r["path"] == "/v1/chat/completions" for r in llm.requests)
    assert all(r["authorization"] == "Bearer sk-test" for r in llm.requests)
    expected = []
    for action in ("tennis serve", "apply eye makeup", "playing guitar"):
        expected += [OBJECT_PROMPT_TEMPLATE.format(action=action), SCENE_PROMPT_TEMPLATE.format(action=action)]
    assert llm.prompts() == expected
    assert expected[0] == (
        "For the tennis serve, list the most important physical objects that commonly appear when this action occurs."
    )
    assert expected[1] == (
        "List the most common places or background scenes where tennis serve typically occurs. "
        "Do not include objects or equipment"
    )


def test_progress_reports_each_class(llm: FakeLLM) -> None:
    llm.responder = by_prompt("ball", "court")
    seen: list[tuple[str, int, int]] = []
    make_client(llm).discover(["a_b", "c_d", "e_f"], progress=lambda what, n, total: seen.append((what, n, total)))
    assert seen == [("concept discovery", 1, 3)] * 3


def test_result_round_trips_through_json(llm: FakeLLM) -> None:
    llm.responder = by_prompt("ball", "court")
    result = make_client(llm).discover(["x_y"])
    again = DiscoveryResult.from_json(json.loads(json.dumps(result.to_json())))
    assert again == result


# ------------------------------------------------------------------ settings and errors


def test_missing_key_and_url_names_the_env_vars() -> None:
    with pytest.raises(LanguageModelError) as info:
        ConceptDiscoveryClient(LLMSettings(), None)
    message = str(info.value)
    for var in ("DANCE_LLM_API_KEY", "OPENAI_API_KEY", "DANCE_LLM_BASE_URL", "OPENAI_BASE_URL"):
        assert var in message


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, llm: FakeLLM) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://ignored.invalid/v1")
    monkeypatch.setenv("DANCE_LLM_BASE_URL", llm.base_url + "/")
    monkeypatch.setenv("DANCE_LLM_MODEL", "llama3")
    settings = LLMSettings()
    assert settings.base_url == llm.base_url and settings.model == "llama3"
    assert settings.api_key == "not-needed"  # a local server accepts any key
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    assert LLMSettings().api_key == "sk-openai"
    monkeypatch.setenv("DANCE_LLM_API_KEY", "sk-dance")
    assert LLMSettings().api_key == "sk-dance"
    assert LLMSettings(model="explicit").model == "explicit"

    monkeypatch.delenv("DANCE_LLM_BASE_URL")
    monkeypatch.delenv("DANCE_LLM_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY")
    assert LLMSettings().base_url == "http://ignored.invalid/v1"

    llm.script(Reply("ball"))
    client = ConceptDiscoveryClient(LLMSettings(base_url=llm.base_url, model="llama3", backoff=0.0), None)
    assert client.ask("q") == "ball"
    assert llm.requests[0]["authorization"] == "Bearer not-needed"
    assert llm.requests[0]["body"]["model"] == "llama3"


def test_openai_api_key_alone_targets_openai() -> None:
    settings = LLMSettings(api_key="sk-x")
    assert settings.base_url is None and settings.endpoint == "https://api.openai.com/v1"
    ConceptDiscoveryClient(settings, None)  # no request is made on construction


@pytest.mark.parametrize(
    ("field_name", "value"), [("timeout", 0.0), ("max_retries", -1), ("backoff", -1.0), ("model", " ")]
)
def test_invalid_settings_are_rejected(field_name: str, value: Any) -> None:
    settings = LLMSettings(base_url="http://127.0.0.1:9/v1", **{field_name: value})
    with pytest.raises(LanguageModelError):
        ConceptDiscoveryClient(settings, None)


def test_missing_openai_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # makes `import openai` raise ImportError
    with pytest.raises(LanguageModelError) as info:
        ConceptDiscoveryClient(LLMSettings(base_url="http://127.0.0.1:9/v1"), None)
    assert "pip install 'dance-xai[llm]'" in str(info.value)


def test_bad_class_names_fail_before_any_call(llm: FakeLLM) -> None:
    client = make_client(llm)
    with pytest.raises(LanguageModelError):
        client.discover(["tennis_serve", "__"])
    with pytest.raises(LanguageModelError):
        client.discover("tennis_serve")
    assert llm.requests == []
