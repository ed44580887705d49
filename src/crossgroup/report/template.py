"""The page shell of the HTML reports: inline CSS, no script, no external resource.

The report is one file an analyst can mail or open offline, so nothing here may point outside
the document (no fonts, stylesheets, scripts or images by URL). A Content-Security-Policy
meta tag enforces that in the browser: anything fetched would be blocked and reported.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

CSS = """
:root {
  --ink: #1f2328; --muted: #57606a; --line: #d0d7de; --paper: #ffffff; --wash: #f6f8fa;
  --accent: #0072b2; --warn-ink: #5c3b00; --warn-wash: #fff6e0; --warn-line: #d99a00;
}
* { box-sizing: border-box; }
html { font-size: 16px; -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: var(--wash); color: var(--ink);
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    "Noto Sans", "Liberation Sans", sans-serif;
  line-height: 1.5;
}
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 48px; }
header.page { padding: 28px 0 12px; border-bottom: 1px solid var(--line); margin-bottom: 20px; }
header.page h1 { font-size: 1.9rem; line-height: 1.2; margin: 0 0 6px; letter-spacing: -0.01em; }
header.page p { margin: 0; color: var(--muted); }
h2 { font-size: 1.25rem; margin: 0 0 4px; }
p.lead { color: var(--muted); margin: 0 0 12px; font-size: 0.95rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: 12px;
  margin: 0 0 20px; }
.card { background: var(--paper); border: 1px solid var(--line); border-radius: 10px;
  padding: 14px 16px; }
.card .value { font-size: 1.6rem; font-weight: 650; display: block; }
.card .label { color: var(--muted); font-size: 0.9rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 540px), 1fr));
  gap: 16px; }
section.panel { background: var(--paper); border: 1px solid var(--line); border-radius: 10px;
  padding: 18px 20px; margin: 0 0 16px; min-width: 0; }
svg.chart { display: block; width: 100%; height: auto; max-width: 100%; }
section.wide svg.chart { max-width: 900px; }
section.heat h3 { font-size: 1rem; margin: 14px 0 4px; color: var(--muted); }
svg.chart text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial,
  "Liberation Sans", sans-serif !important; }
aside.suppression { background: var(--warn-wash); color: var(--warn-ink);
  border: 1px solid var(--warn-line); border-left: 6px solid var(--warn-line);
  border-radius: 10px; padding: 16px 20px; margin: 0 0 20px; }
aside.suppression h2 { color: var(--warn-ink); }
aside.suppression h3 { font-size: 1rem; margin: 12px 0 0; }
aside.suppression .split { display: grid; gap: 4px 28px;
  grid-template-columns: repeat(auto-fit, minmax(min(100%, 420px), 1fr)); }
aside.suppression ul { margin: 8px 0 0; padding-left: 1.2em; }
aside.suppression li { margin: 2px 0; }
table { border-collapse: collapse; width: 100%; font-size: 0.95rem; }
th, td { text-align: left; vertical-align: top; padding: 8px 10px;
  border-bottom: 1px solid var(--line); }
th { background: var(--wash); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.empty { color: var(--muted); font-style: italic; }
.scroll { overflow-x: auto; }
table.changes { width: auto; min-width: 100%; }
table.changes caption { caption-side: bottom; text-align: left; color: var(--muted);
  font-size: 0.85rem; padding-top: 6px; }
table.changes thead th { white-space: normal; }
table.changes tbody th { min-width: 15em; }
table.changes th .seg { display: block; font-weight: 400; color: var(--muted); font-size: 0.75rem;
  min-width: 6.5em; }
table.changes td.stay { background: #e6f0f7; font-weight: 600; }
table.changes td.sup, table.changes td.none { color: var(--muted); }
table.changes tr.new th { font-style: italic; }
p.relabel { background: var(--warn-wash); color: var(--warn-ink); border-left: 4px solid
  var(--warn-line); border-radius: 6px; padding: 8px 12px; margin: 0 0 12px; }
p.note { color: var(--muted); font-size: 0.9rem; margin: 10px 0 0; }
footer { color: var(--muted); font-size: 0.9rem; margin-top: 24px; }
@media (max-width: 700px) { main { padding: 12px; } header.page h1 { font-size: 1.5rem; } }
@media print { body { background: #fff; } section.panel, .card { break-inside: avoid; } }
"""


def frame_table(frame: pl.DataFrame) -> str:
    """A frame as an HTML table, header from its columns, every value escaped (None blank)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{'' if v is None else html.escape(str(v))}</td>" for v in row)
        + "</tr>"
        for row in frame.iter_rows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, body: str) -> str:
    """Wrap already-escaped body markup in the report shell; `title` is escaped here."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{html.escape(title)}</title>\n"
        f"<style>{CSS}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )
