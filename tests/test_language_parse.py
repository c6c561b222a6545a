"""parse_list on realistic, messy language-model answers; prompt rendering and class-name humanisation."""

from __future__ import annotations

import pytest

from dance.errors import LanguageModelError
from dance.language.parse import clean_item, parse_list
from dance.language.prompts import (
    OBJECT_PROMPT_TEMPLATE,
    SCENE_PROMPT_TEMPLATE,
    STRICT_INSTRUCTION,
    humanize_class_name,
    object_prompt,
    render_prompt,
    scene_prompt,
    strict_prompt,
)

# (answer, expected items)
ANSWERS: dict[str, tuple[str, list[str]]] = {
    "numbered dot": ("1. Tennis ball\n2. Tennis racket\n3. Net", ["tennis ball", "tennis racket", "net"]),
    "numbered paren": ("1) ball\n2) racket\n3) net", ["ball", "racket", "net"]),
    "plain lines with above/below": ("above clouds\nbelow deck\nsky above city", ["above clouds", "below deck",
                                                                                    "sky above city"]),
    "numbered both parens": ("(1) Ball\n(2) Racket", ["ball", "racket"]),
    "numbered no space": ("1.Ball\n2.Racket", ["ball", "racket"]),
    "numbered inline": ("1. ball 2. racket 3. net", ["ball", "racket", "net"]),
    "numbered two digits": (
        "\n".join(f"{i}. item {chr(96 + i)}" for i in range(1, 12)),
        [f"item {chr(96 + i)}" for i in range(1, 12)],
    ),
    "lettered": ("a) barbell\nb) weight plates\nc) chalk", ["barbell", "weight plates", "chalk"]),
    "dash bullets": ("- Basketball\n- Hoop\n- Backboard", ["basketball", "hoop", "backboard"]),
    "star bullets": ("* Basketball\n* Hoop", ["basketball", "hoop"]),
    "unicode bullets": ("• Basketball\n•Hoop\n● Court lines", ["basketball", "hoop", "court lines"]),
    "mixed bullets": ("- Tennis court\n* Gym\n• Park\n+ Beach", ["tennis court", "gym", "park", "beach"]),
    "indented bullets": ("   - mat\n   - bar", ["mat", "bar"]),
    "plain lines": ("Tennis racket\nTennis ball\nNet post", ["tennis racket", "tennis ball", "net post"]),
    "comma line": ("Tennis ball, racket, net, court", ["tennis ball", "racket", "net", "court"]),
    "comma line oxford and": ("Ball, racket, and net.", ["ball", "racket", "net"]),
    "semicolon line": ("gym; fitness center; home living room", ["gym", "fitness center", "home living room"]),
    "intro colon inline": ("The objects are: ball, racket; net.", ["ball", "racket", "net"]),
    "label colon inline": ("Objects: ball, racket, net", ["ball", "racket", "net"]),
    "json array": ('["Tennis ball", "Racket", "net"]', ["tennis ball", "racket", "net"]),
    "json fenced": ('```json\n["Tennis ball", "Racket"]\n```', ["tennis ball", "racket"]),
    "json fenced no language": ('```\n["Swimming pool", "Lake"]\n```', ["swimming pool", "lake"]),
    "json in prose": (
        'Sure! Here is the list you asked for: ["Swimming pool", "Lake", "Beach"]. Hope this helps!',
        ["swimming pool", "lake", "beach"],
    ),
    "json object with list": ('{"objects": ["Ball", "Racket"]}', ["ball", "racket"]),
    "json object fenced in prose": (
        'Here you go:\n```json\n{\n  "scenes": [\n    "Outdoor tennis court",\n    "Indoor arena"\n  ]\n}\n```\n'
        "Let me know if you want more.",
        ["outdoor tennis court", "indoor arena"],
    ),
    "json object several lists": ('{"objects": ["ball"], "equipment": ["racket"]}', ["ball", "racket"]),
    "json list of objects": (
        '[{"name": "Ball", "description": "round"}, {"object": "Net", "why": "divides the court"}]',
        ["ball", "net"],
    ),
    "json numbered keys": ('{"1": "ball", "2": "racket"}', ["ball", "racket"]),
    "json name to explanation": ('{"Ball": "used to hit", "Racket": "held by the player"}', ["ball", "racket"]),
    "json items with explanations": ('["Ball: used to hit", "Net - divides"]', ["ball", "net"]),
    "bold with colon": (
        "1. **Tennis Racket**: used to hit the ball.\n2. **Tennis Ball**: struck by the racket.",
        ["tennis racket", "tennis ball"],
    ),
    "bold colon inside": ("- **Racket:** used to hit\n- **Ball:** round", ["racket", "ball"]),
    "bold with dash": ("- **Net** - divides the court\n- **Court** – the playing area", ["net", "court"]),
    "bold with em dash": ("- **Net**—divides the court\n- **Baseline**", ["net", "baseline"]),
    "bold unmarked with comma explanation": ("**Ball**: used to hit, serve and volley", ["ball"]),
    "plain colon explanation": ("- Ball: the object being served\n- Racket: held in hand", ["ball", "racket"]),
    "dash explanation": ("- Ball - the object being served", ["ball"]),
    "em dash explanation": ("- Ball — the object being served\n- Racket—held in hand", ["ball", "racket"]),
    "hyphenated words kept": ("- T-shirt\n- Ping-pong table\n- Yo-yo", ["t-shirt", "ping-pong table", "yo-yo"]),
    "prose around numbered list": (
        "Sure! Here are the most important physical objects that commonly appear during a tennis serve:\n\n"
        "1. Tennis racket\n2. Tennis ball\n3. Net\n\n"
        "These objects are essential for performing a serve. Let me know if you need anything else!",
        ["tennis racket", "tennis ball", "net"],
    ),
    "prose around plain lines": (
        "Certainly! Here are the places:\nTennis court\nSports club\nI hope this helps.",
        ["tennis court", "sports club"],
    ),
    "parenthetical remarks": (
        "1. Stadium (indoor or outdoor)\n2. Park (public)\n3. Gym (e.g., a school gym)",
        ["stadium", "park", "gym"],
    ),
    "nested parentheses": ("- Pool (olympic (50 m) or shorter)", ["pool"]),
    "unclosed parenthesis": ("- Pool (olympic or shorter", ["pool"]),
    "square brackets": ("- Mat [optional]\n- Bar", ["mat", "bar"]),
    "trailing periods": ("- Ball.\n- Racket.\n- Net...", ["ball", "racket", "net"]),
    "duplicates case-insensitive": ("- Ball\n- ball\n- BALL\n- Net\n- net.", ["ball", "net"]),
    "empty items": ("- Ball\n-\n- \n*\n- Net\n\n\n", ["ball", "net"]),
    "empty comma items": ("ball,, ,racket,", ["ball", "racket"]),
    "nested category headers": (
        "1. **Equipment:**\n   - Racket\n   - Ball\n2. **Surroundings:**\n   - Net\n   - Umpire chair",
        ["racket", "ball", "net", "umpire chair"],
    ),
    "markdown heading": ("### Objects\n- Ball\n- Racket", ["ball", "racket"]),
    "markdown table": (
        "| Object | Description |\n|---|---|\n| Ball | round |\n| **Racket** | strings |",
        ["ball", "racket"],
    ),
    "such as and etc": (
        "- Balls such as tennis balls\n- Protective gear (e.g., helmets)\n- Shoes, etc.",
        ["balls", "protective gear", "shoes"],
    ),
    "quotes": ("- \"Ball\"\n- 'Racket'\n- “Net”\n- `court`", ["ball", "racket", "net", "court"]),
    "articles dropped": ("- A ball\n- An umbrella\n- The net", ["ball", "umbrella", "net"]),
    "filler items dropped": ("- Ball\n- Others\n- etc.", ["ball"]),
    "marked comma explanation": ("- Racket, the main tool\n- Ball, usually yellow", ["racket", "ball"]),
    "marked inline list": ("- shoes, socks, shorts", ["shoes", "socks", "shorts"]),
    "windows newlines": ("1. Ball\r\n2. Racket\r\n", ["ball", "racket"]),
    "can is not prose": ("Trash can\nWatering can", ["trash can", "watering can"]),
    "code fence plain list": ("```\nball\nracket\n```", ["ball", "racket"]),
    "single item": ("Swimming pool", ["swimming pool"]),
    "numbers in names kept": ("- 3D glasses\n- 10 kg dumbbell", ["3d glasses", "10 kg dumbbell"]),
    "long sentence item dropped": (
        "- Ball\n- A very long sentence that explains the many reasons why the net matters so much",
        ["ball"],
    ),
    "non ascii": ("- Café terrace\n- Piñata", ["café terrace", "piñata"]),
}

NO_LIST: dict[str, str] = {
    "empty": "",
    "whitespace": "  \n\t ",
    "refusal": "I'm sorry, but I can't help with that request.",
    "single sentence": "The tennis serve is a fundamental stroke in tennis.",
    "two sentences": "A tennis serve starts every point. It is usually hit overhead.",
    "exclamation": "Sure!",
    "question": "Could you clarify which sport you mean?",
    "intro only": "Here are the objects:",
    "json without strings": "[1, 2, 3]",
    "empty json": '{"objects": []}',
    "only fillers": "- etc.\n- others",
}


@pytest.mark.parametrize(("answer", "expected"), list(ANSWERS.values()), ids=list(ANSWERS))
def test_parse_list_messy_answers(answer: str, expected: list[str]) -> None:
    assert parse_list(answer) == expected


@pytest.mark.parametrize("answer", list(NO_LIST.values()), ids=list(NO_LIST))
def test_parse_list_without_a_list_is_empty(answer: str) -> None:
    assert parse_list(answer) == []


def test_parse_list_rejects_non_strings() -> None:
    assert parse_list(None) == []  # type: ignore[arg-type]


@pytest.mark.parametrize("answer", [a for a, _ in ANSWERS.values()], ids=list(ANSWERS))
def test_parse_list_output_is_clean(answer: str) -> None:
    items = parse_list(answer)
    assert len(items) == len({i.casefold() for i in items})
    for item in items:
        assert item == item.strip().lower() and item
        assert not item.endswith((".", ",", ":", ";")) and "*" not in item
        assert clean_item(item) == item  # cleaning is idempotent


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("**Ball**: used to hit", "ball"),
        ("  Tennis Ball.  ", "tennis ball"),
        ("the net (center)", "net"),
        ("etc.", ""),
        ("1234", ""),
        ("", ""),
        ("and a towel", "towel"),
    ],
)
def test_clean_item(raw: str, expected: str) -> None:
    assert clean_item(raw) == expected


# ------------------------------------------------------------------ prompts


@pytest.mark.parametrize(
    ("name", "human"),
    [
        ("tennis_serve", "tennis serve"),
        ("TennisServe", "tennis serve"),
        ("tennis-serve", "tennis serve"),
        ("ApplyEyeMakeup", "apply eye makeup"),
        ("playing guitar", "playing guitar"),
        ("  Playing  Guitar ", "playing guitar"),
        ("clean_and_jerk", "clean and jerk"),
        ("PlayingDJ", "playing dj"),
        ("TVShow", "tv show"),
        ("YoYo", "yo yo"),
        ("jumping_jacks", "jumping jacks"),
        ("squat", "squat"),
    ],
)
def test_humanize_class_name(name: str, human: str) -> None:
    assert humanize_class_name(name) == human


@pytest.mark.parametrize("name", ["", "  ", "__", 3])
def test_humanize_rejects_empty_names(name: object) -> None:
    with pytest.raises(LanguageModelError):
        humanize_class_name(name)  # type: ignore[arg-type]


def test_prompts_are_the_papers() -> None:
    assert object_prompt("TennisServe") == (
        "For the tennis serve, list the most important physical objects that commonly appear when this action occurs."
    )
    assert scene_prompt("tennis_serve") == (
        "List the most common places or background scenes where tennis serve typically occurs. "
        "Do not include objects or equipment"
    )
    assert render_prompt("objects", "x_y") == OBJECT_PROMPT_TEMPLATE.format(action="x y")
    assert render_prompt("scenes", "x_y") == SCENE_PROMPT_TEMPLATE.format(action="x y")
    with pytest.raises(LanguageModelError):
        render_prompt("verbs", "x_y")


def test_strict_prompt_asks_for_one_item_per_line() -> None:
    strict = strict_prompt(object_prompt("golf_swing"))
    assert strict.startswith(object_prompt("golf_swing"))
    assert strict.endswith(STRICT_INSTRUCTION) and "one item per line, nothing else" in strict
