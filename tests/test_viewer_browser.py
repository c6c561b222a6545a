"""The viewer in a real browser: Debian's chromium, headless, driven by Playwright (never `playwright install`).

Skips (with the reason) where the playwright package or a chromium binary is missing; `.ci/run` installs both.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from _inspect_runs import copy_run, rgb_run

from dance.viewer import make_server

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")


def _chromium() -> str | None:
    for candidate in (os.environ.get("DANCE_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (Debian: apt-get install -y chromium)")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def server(tmp_path_factory, single_thread):
    run = copy_run(rgb_run(tmp_path_factory), tmp_path_factory.mktemp("viewer-browser") / "run")
    srv = make_server(run, port=0)
    srv.start_background()
    yield srv
    srv.shutdown()
    srv.server_close()


def _decisive_switch(state) -> tuple[str, str, str] | None:
    """A test video and one of its shown concepts whose switching off changes the predicted class."""
    for s in state.samples("test"):
        before = state.predict(s["id"])
        for cs in before["before"]["top"].values():
            for c in cs:
                after = state.predict(s["id"], [c["concept"]])
                if after["changed"]:
                    return s["id"], c["concept"], after["after"]["predicted"]
    return None


def test_toggle_a_concept_in_the_browser(server, tmp_path: Path) -> None:
    state = server.state
    pick = _decisive_switch(state)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            # the Content-Security-Policy must not block anything the page (or plotly.js) does
            page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(server.url)
            page.wait_for_selector("body[data-ready='1']", timeout=15_000)
            if pick is not None:
                sample, concept, expected = pick
                page.click(f"#samples li[data-id='{sample}']")
                page.wait_for_function("(id) => document.querySelector('#prediction') && "
                                       "document.querySelector('#prediction').textContent.includes(id)", arg=sample)
            else:  # no single concept flips a prediction in this tiny run: the probabilities must still move
                sample, concept, expected = state.samples("test")[0]["id"], None, None
            # the video preview (an animated GIF made by the server) is shown
            page.wait_for_function("() => { const i = document.querySelector('#preview'); "
                                   "return i.complete && i.naturalWidth > 0; }", timeout=15_000)
            before_text = page.inner_text("#prediction")
            before_class = page.inner_text("#predicted-class")
            assert "null" not in before_text and "undefined" not in before_text
            box = (page.locator(f".concept-toggle[data-concept='{concept}']") if concept
                   else page.locator(".concept-toggle").first)
            assert box.is_checked()
            box.click()  # switch it off
            page.wait_for_function("(t) => document.querySelector('#prediction').innerText !== t", arg=before_text)
            page.wait_for_selector("#off-list .chip")
            after_text = page.inner_text("#prediction")
            assert after_text != before_text
            assert not box.is_checked()
            if expected is not None:
                assert page.inner_text("#predicted-class") == expected != before_class
                assert "changed" in after_text
            # a weight edit's effect on the split, and the Sankey of a class pair (or why there is none)
            first = page.locator("#w-class-weights tr").first
            if first.inner_text().strip() != "no non-zero weights":
                first.click()
            else:
                page.fill("#w-concept", concept or state.info()["concepts"][0])
            page.fill("#w-value", "0")
            page.click("#w-preview")
            page.wait_for_selector("#w-summary")
            assert "accuracy" in page.inner_text("#w-summary") and "fixed" in page.inner_text("#w-summary")
            assert "null" not in page.inner_text("#w-result")
            page.click("#sk-show")
            if state.sankey_available()["available"]:
                page.wait_for_selector("#sankey svg.main-svg", timeout=15_000)
            else:
                page.wait_for_function("() => document.querySelector('#sankey').textContent.includes('unavailable')")
            page.screenshot(path=str(tmp_path / "viewer.png"), full_page=True)
            # switching it on again restores the prediction
            box.click()
            page.wait_for_function("(t) => document.querySelector('#prediction').innerText === t", arg=before_text)
            assert not errors, errors
        finally:
            browser.close()
    shot = tmp_path / "viewer.png"
    assert shot.is_file() and shot.stat().st_size > 10_000


def _versions(run: Path) -> int:
    return len(list((run / "edits").glob("v*"))) if (run / "edits").is_dir() else 0


def test_save_from_the_page_and_not_from_another_site(server) -> None:
    """The page's own POSTs carry the token and save; a page from another origin cannot write (CSRF)."""
    run = server.state.run
    info = server.state.info()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(server.url)
            page.wait_for_selector("body[data-ready='1']", timeout=15_000)
            before = _versions(run)
            page.fill("#w-concept", info["concepts"][0])
            page.fill("#w-value", "0.123")
            page.click("#w-save")
            page.wait_for_function("() => document.querySelector('#w-result').textContent.includes('saved as')")
            assert _versions(run) == before + 1
            page.wait_for_function("(v) => document.querySelector('#version').value === v",  # the page moves on
                                   arg=f"v{before + 1:03d}", timeout=15_000)

            # another site's page (served here by Playwright, so no DNS) posts a 'simple' text/plain request
            evil = browser.new_page()
            evil.route("http://evil.example/", lambda route: route.fulfill(
                status=200, content_type="text/html", body="<!doctype html><title>evil</title>"))
            evil.goto("http://evil.example/")
            body = {"class": info["classes"][0], "concept": info["concepts"][0], "weight": 0.777, "save": True}
            outcome = evil.evaluate("""async ([url, body]) => {
                try {
                  const r = await fetch(url, {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
                                              body: JSON.stringify(body)});
                  return "sent " + r.type;
                } catch (e) { return "blocked " + e; }
              }""", [server.url + "api/weight", body])
            assert outcome  # sent (opaque response) or blocked by the browser: either way nothing is written
            assert _versions(run) == before + 1
        finally:
            browser.close()
