"""One self-contained HTML page: sections of text, tables and PNG figures inlined as base64.

No scripts, no external files, no fonts or styles from the network: the page opens the same from
a mail attachment as from the work directory.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import Any, Sequence

from ese.report.tables import fmt

_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-top: .6em; }
table { border-collapse: collapse; margin: .6em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f2f2; }
figure { margin: .8em 0; } figcaption { font-size: .85em; color: #555; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
nav a { margin-right: 1em; } .note { color: #666; font-size: .9em; }
"""


@dataclass
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]


@dataclass
class Figure:
    caption: str
    png: bytes


@dataclass
class Section:
    """One stage of the report: paragraphs, tables and figures, in that order."""

    title: str
    anchor: str
    text: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


def _table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in t.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row) + "</tr>" for row in t.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(f: Figure) -> str:
    data = base64.b64encode(f.png).decode("ascii")
    cap = html.escape(f.caption)
    return f'<figure><img src="data:image/png;base64,{data}" alt="{cap}"><figcaption>{cap}</figcaption></figure>'


def render_html(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The page: a title, a table of contents, then every section."""
    nav = " ".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>",
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p class=\"note\">{html.escape(subtitle)}</p><nav>{nav}</nav>"]
    for s in sections:
        parts.append(f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>')
        parts += [f"<p>{html.escape(p)}</p>" for p in s.text]
        parts += [_table(t) for t in s.tables]
        parts += [_figure(f) for f in s.figures]
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
