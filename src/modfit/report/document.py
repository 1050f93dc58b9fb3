"""A report as data (headings, text, tables, figures), rendered to Markdown and to self-contained HTML.

Building the document writes nothing; `write_report` is the edge that does: `report.md` with the PNGs
beside it, and `report.html` with the same PNGs embedded (base64), so it can be mailed as one file.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

from modfit.files import write_atomic


@dataclass(frozen=True)
class Entry:
    """One table entry; `strong` marks it (the best ASR of a column)."""

    text: str
    strong: bool = False


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Table:
    """`text_columns` leading columns hold labels (left-aligned); the rest hold numbers."""

    header: list[str]
    rows: list[list[Entry]]
    caption: str = ""
    text_columns: int = 1


@dataclass(frozen=True)
class Figure:
    name: str  # file name of the PNG beside report.md
    png: bytes
    caption: str = ""


Block = Heading | Text | Code | Table | Figure


@dataclass(frozen=True)
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def figures(self) -> list[Figure]:
        return [b for b in self.blocks if isinstance(b, Figure)]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(document: Document) -> str:
    lines = [f"# {document.title}", ""]
    for block in document.blocks:
        if isinstance(block, Heading):
            lines += [f"{'#' * block.level} {block.text}", ""]
        elif isinstance(block, Text):
            lines += [block.text, ""]
        elif isinstance(block, Code):
            lines += ["```", block.text.rstrip("\n"), "```", ""]
        elif isinstance(block, Table):
            lines.append("| " + " | ".join(_md_cell(h) for h in block.header) + " |")
            aligns = ["---" if i < block.text_columns else "---:" for i in range(len(block.header))]
            lines.append("|" + "|".join(aligns) + "|")
            for row in block.rows:
                cells = [f"**{_md_cell(e.text)}**" if e.strong else _md_cell(e.text) for e in row]
                lines.append("| " + " | ".join(cells) + " |")
            lines += ([""] + [block.caption] if block.caption else []) + [""]
        elif isinstance(block, Figure):
            lines += [f"![{_md_cell(block.caption)}]({block.name})", ""]
            if block.caption:
                lines += [f"*{block.caption}*", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


STYLE = """body{font-family:system-ui,sans-serif;max-width:1600px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:4px 8px}
td{text-align:right;white-space:nowrap}td.text,th{text-align:left}th{background:#f3f3f3}
.wide{overflow-x:auto}
img{max-width:100%}figure{margin:1.5em 0}figcaption,.caption{color:#555;font-size:0.9em}
pre{background:#f6f6f6;padding:0.8em;overflow-x:auto}"""


def _html_cell(entry: Entry, text: bool) -> str:
    content = html.escape(entry.text)
    content = f"<strong>{content}</strong>" if entry.strong else content
    return f'<td class="text">{content}</td>' if text else f"<td>{content}</td>"


def render_html(document: Document) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(document.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{e(document.title)}</h1>",
    ]
    for block in document.blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{e(block.text)}</h{block.level}>")
        elif isinstance(block, Text):
            parts.append(f"<p>{e(block.text)}</p>")
        elif isinstance(block, Code):
            parts.append(f"<pre>{e(block.text)}</pre>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{e(h)}</th>" for h in block.header)
            body = "".join(
                "<tr>" + "".join(_html_cell(c, i < block.text_columns) for i, c in enumerate(row)) + "</tr>"
                for row in block.rows
            )
            caption = f'<p class="caption">{e(block.caption)}</p>' if block.caption else ""
            # a wide table (four attacks × three columns) scrolls inside its box; a number never breaks
            table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            parts.append(f'<div class="wide">{table}</div>{caption}')
        elif isinstance(block, Figure):
            data = base64.b64encode(block.png).decode("ascii")
            parts.append(
                f'<figure><img alt="{e(block.caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{e(block.caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(document: Document, out: str | Path) -> list[Path]:
    """The PNGs, then report.html, then report.md; every file written atomically. Returns the paths."""
    out = Path(out)
    written = []
    for figure in document.figures():
        write_atomic(out / figure.name, figure.png)
        written.append(out / figure.name)
    write_atomic(out / "report.html", render_html(document))
    write_atomic(out / "report.md", render_markdown(document))
    return [*written, out / "report.html", out / "report.md"]
