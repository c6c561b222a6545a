"""The sanity-check section: the reversed-video check (paper §4.1, Fig. 7) when ``RUN/sanity/sanity.json`` exists."""

from __future__ import annotations

from dance.explain.report.data import RunData
from dance.explain.report.html import escape, table


def _value(v: float | int) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:.1f}"
    return str(v)


def _meanings() -> dict[str, str]:
    """What each field means, from the sanity module when it is there (it is optional for the report)."""
    try:
        from dance.explain.sanity import FIELDS
    except ImportError:
        return {}
    return dict(FIELDS)


def sanity_section(data: RunData) -> str:
    """Top-level numeric fields of sanity.json in a table, or how to produce the file."""
    s = data.sanity
    if s is None:
        return (f'<p class="note">No sanity check yet: <code>dance sanity {escape(str(data.root))}</code> (the '
                f"reversed-video check) writes <code>{escape(str(data.sanity_path))}</code>; "
                f"run it and make the report again to include it here.</p>")
    if not isinstance(s, dict):
        return '<p class="note">sanity/sanity.json is not a JSON object; nothing to show.</p>'
    meaning = _meanings()
    rows = [[escape(k), _value(v), escape(meaning.get(k, ""))] for k, v in s.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)]
    missing = [k for k, v in s.items() if v is None and k in meaning]
    note = s.get("note") or s.get("description")
    text = f'<p class="note">{escape(str(note))}</p>' if isinstance(note, str) else ""
    if missing:
        text += f'<p class="small">not computed for this run: {escape(", ".join(missing))}</p>'
    return ('<p class="note">The reversed-video check (DANCE paper §4.1, Fig. 7): evaluated videos are also '
            "played backwards; a model that predicts through motion dynamics should change its prediction or its "
            "motion explanation for many of them. Top-level numbers of <code>sanity/sanity.json</code>:</p>"
            + (table(["field", "value", "meaning"], rows, numeric=(1,)) if rows else "<p>(no numeric fields)</p>")
            + text)
