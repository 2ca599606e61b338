"""The report's single HTML page: self-contained (inline style, no scripts, no external
resources), images as relative links to the PNGs beside it. Machine-readable values ride along
as ``data-*`` attributes (full precision) next to their rounded display."""

from __future__ import annotations

import html
import json

from tfseti.metrics import is_defined

STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.note { color: #666; font-size: .9em; }
.unavailable { color: #a33; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } figcaption { font-size: .75em; max-width: 380px; overflow-wrap: anywhere; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; font-size: .8em; }
"""

UNDEFINED = "undefined (one class only)"


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def fmt_auc(value) -> str:
    if not is_defined(value):
        return UNDEFINED
    return f"{value:.4f}"


def auc_cell(value, metric: str | None = None) -> str:
    """A table cell showing an AUC (4 decimals) with its full value in ``data-value``."""
    defined = is_defined(value)
    attrs = f' data-metric="{esc(metric)}"' if metric else ""
    attrs += f' data-value="{float(value)!r}"' if defined else ' data-value="undefined"'
    return f"<td{attrs}>{esc(fmt_auc(value))}</td>"


def number_cell(value, metric: str | None = None, digits: int = 4) -> str:
    """A table cell showing a number (``digits`` decimals; None/NaN: "undefined") with its full
    value in ``data-value``."""
    defined = is_defined(value)
    attrs = f' data-metric="{esc(metric)}"' if metric else ""
    attrs += f' data-value="{float(value)!r}"' if defined else ' data-value="undefined"'
    return f"<td{attrs}>{esc(f'{value:.{digits}f}' if defined else 'undefined')}</td>"


def table(headers: list[str] | None, rows: list[str], attrs: str = "") -> str:
    """A table of pre-rendered ``rows``; ``headers`` None: no header row."""
    head = "" if headers is None else (
        "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead>")
    return f"<table{attrs}>{head}<tbody>{''.join(rows)}</tbody></table>"


def row(cells: list[str], attrs: str = "") -> str:
    return f"<tr{attrs}>{''.join(cells)}</tr>"


def cell(value) -> str:
    return f"<td>{esc(value)}</td>"


def image(src: str, alt: str) -> str:
    return f'<img src="{esc(src)}" alt="{esc(alt)}">'


def section(key: str, title: str, body: str) -> str:
    return f'<section id="{esc(key)}">\n<h2>{esc(title)}</h2>\n{body}\n</section>'


def unavailable(reason: str) -> str:
    return f'<p class="unavailable">{esc(reason)}</p>'


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def config_block(config: dict) -> str:
    return f"<pre>{esc(json.dumps(config, indent=2, sort_keys=False))}</pre>"


def document(title: str, sections: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            # An empty icon: the browser would otherwise request /favicon.ico.
            "<link rel=\"icon\" href=\"data:,\">\n"
            f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            f"<h1>{esc(title)}</h1>\n" + "\n".join(sections) + "\n</body>\n</html>\n")
