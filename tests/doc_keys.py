"""The JSON keys docs/cli.md promises, per command, and a check of a real JSON against them.

Convention of the doc: in a command's section, the keys are the backticked names in the first
column of the table after a line mentioning JSON, or in the paragraph that starts at "JSON".
A key is a dotted path: ``<name>`` matches any one key, ``{a,b}`` each of a and b, ``x[]`` every
element of the list x. Other backticked text (commands, files, flags) is not a key.
"""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
_KEY = re.compile(r"^[A-Za-z_<{][A-Za-z0-9_.<>{}|,\[\]]*$")


def documented_keys(doc: Path = DOC) -> dict[str, list[str]]:
    """{section title ('ese compile'): [key paths]} for every section that documents JSON."""
    out: dict[str, list[str]] = {}
    for block in re.split(r"^## ", doc.read_text(encoding="utf-8"), flags=re.M)[1:]:
        section = _command(re.match(r"`([^`]*)`", block).group(1))
        paragraphs = re.split(r"\n\s*\n", block)
        for k, para in enumerate(paragraphs):
            if "JSON" not in para:
                continue
            own = re.match(r"`(ese [a-z ]+)` JSON", para.strip())  # e.g. `ese rtl sim` JSON: ...
            title = _command(own.group(1)) if own else section
            keys = out.setdefault(title, [])
            if para.lstrip().startswith("|"):
                continue
            nxt = paragraphs[k + 1] if k + 1 < len(paragraphs) else ""
            if nxt.lstrip().startswith("|") and para.rstrip().endswith(":"):
                rows = [r for r in nxt.splitlines() if r.startswith("|")][2:]
                cells = [r.split("|")[1] for r in rows]
            else:
                cells = [para[para.index("JSON"):]]
            for cell in cells:
                keys += [t for t in re.findall(r"`([^`]+)`", cell) if _KEY.match(t) and "/" not in t
                         and not t.endswith((".json", ".md"))]
    return {title: keys for title, keys in out.items() if keys}


def _command(heading: str) -> str:
    """'ese compile MODEL.qnpz --pes 32' -> 'ese compile': the leading lower-case words."""
    words = []
    for w in heading.split():
        if not re.fullmatch(r"[a-z]+", w):
            break
        words.append(w)
    return " ".join(words)


def _segments(path: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in path:
        if ch in "<{":
            depth += 1
        elif ch in ">}":
            depth -= 1
        if ch == "." and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return out + [cur]


def missing(obj: object, path: str) -> list[str]:
    """The expansions of ``path`` that ``obj`` lacks ([] if every one is there)."""
    return _missing(obj, _segments(path), "")


def _missing(obj: object, segs: list[str], at: str) -> list[str]:
    if not segs:
        return []
    seg, rest = segs[0], segs[1:]
    if seg.startswith("{") and seg.endswith("}"):
        return [m for name in seg[1:-1].split(",") for m in _missing(obj, [name.strip(), *rest], at)]
    listed = seg.endswith("[]")
    name = seg[:-2] if listed else seg
    if not isinstance(obj, dict):
        return [f"{at}{name} (parent is not an object)"]
    if name.startswith("<"):
        children = list(obj.values())
        if not children:
            return [f"{at}{name} (no entries)"]
    elif name in obj:
        children = [obj[name]]
    else:
        return [f"{at}{name}"]
    if listed:
        children = [e for c in children for e in (c if isinstance(c, list) else [None])]
    return [m for c in children for m in _missing(c, rest, f"{at}{name}.")]
