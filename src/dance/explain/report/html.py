"""Small HTML helpers: escaping, data URIs, tables, signed bars, and the page shell (one stylesheet, no links out).

Everything the report embeds is inline: images are ``data:`` URIs and plotly.js is one inline ``<script>``, so the
file opens offline and can be mailed as one attachment.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path

import numpy as np

MIME = {".gif": "image/gif", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

STYLE = """
body{font-family:Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafaf7}
main{max-width:1180px;margin:0 auto;padding:16px 28px 60px}
h1{font-size:26px;margin:18px 0 4px} h2{font-size:21px;margin:34px 0 8px;border-bottom:2px solid #dde;
padding-bottom:4px} h3{font-size:16px;margin:20px 0 6px} h4{font-size:14px;margin:12px 0 4px;color:#445}
nav{font-size:14px;margin:6px 0 14px} nav a{margin-right:14px;color:#335}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #dcdcd6;padding:3px 8px;text-align:left;vertical-align:middle}
th{background:#eef0f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#555;font-size:13px;max-width:980px} .small{font-size:12px;color:#666}
.ok{color:#217a3c;font-weight:bold} .bad{color:#b02a2a;font-weight:bold}
.sample{background:#fff;border:1px solid #dcdcd6;border-radius:6px;padding:10px 14px;margin:14px 0}
.frames img{height:96px;margin-right:4px;border:1px solid #ccc}
.bar{position:relative;width:220px;height:14px;background:#f0f0ec}
.bar .mid{position:absolute;left:50%;top:0;bottom:0;border-left:1px solid #888}
.bar .pos{position:absolute;left:50%;top:2px;bottom:2px;background:#3d8f5a}
.bar .neg{position:absolute;right:50%;top:2px;bottom:2px;background:#c2453d}
.cat img{vertical-align:middle;margin-right:6px} details{margin:8px 0} summary{cursor:pointer;color:#335}
.sankey{background:#fff;border:1px solid #dcdcd6;margin:8px 0}
"""


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def file_uri(path: Path) -> str:
    """A data URI of an image file (GIF, PNG, JPEG)."""
    path = Path(path)
    return data_uri(path.read_bytes(), MIME.get(path.suffix.lower(), "application/octet-stream"))


def jpeg_uri(frame: np.ndarray, height: int = 96, quality: int = 80) -> str:
    """A video frame (H, W, 3 uint8) as a small JPEG data URI."""
    from PIL import Image

    im = Image.fromarray(np.asarray(frame, np.uint8))
    w = max(1, round(im.width * height / max(im.height, 1)))
    buf = io.BytesIO()
    im.resize((w, height), Image.BILINEAR).save(buf, format="JPEG", quality=quality)
    return data_uri(buf.getvalue(), "image/jpeg")


def img(uri: str, alt: str, title: str | None = None, height: int | None = None) -> str:
    h = f' height="{height}"' if height else ""
    t = f' title="{escape(title)}"' if title else ""
    return f'<img src="{uri}" alt="{escape(alt)}"{t}{h} loading="lazy">'


def pct(v: float | None, digits: int = 1) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.{digits}f}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = (), cls: str = "") -> str:
    """A table; header cells are escaped, body cells are HTML (escape them when they are plain text)."""
    c = f' class="{cls}"' if cls else ""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="num">{v}</td>' if i in numeric else f"<td>{v}</td>"
                                    for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table{c}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def bar(value: float, scale: float) -> str:
    """A signed horizontal bar: green to the right for positive values, red to the left for negative ones."""
    frac = 0.0 if scale <= 0 else min(abs(value) / scale, 1.0)
    side = "pos" if value >= 0 else "neg"
    return (f'<div class="bar" title="{value:+.3f}"><div class="mid"></div>'
            f'<div class="{side}" style="width:{50 * frac:.1f}%"></div></div>')


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{escape(anchor)}"><h2>{escape(title)}</h2>{body}</section>'


def page(title: str, sections: Sequence[tuple[str, str, str]], head_script: str = "", intro: str = "") -> str:
    """The whole document: ``sections`` are (anchor, title, html body); ``head_script`` is inlined once."""
    nav = "".join(f'<a href="#{escape(a)}">{escape(t)}</a>' for a, t, _ in sections)
    script = f'<script type="text/javascript">{head_script}</script>' if head_script else ""
    body = "".join(section(a, t, b) for a, t, b in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<style>{STYLE}</style>{script}</head><body><main><h1>{escape(title)}</h1>{intro}"
            f"<nav>{nav}</nav>{body}</main></body></html>")
