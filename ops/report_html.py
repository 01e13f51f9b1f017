"""The page every HTML report shares: one self-contained file, no script, no external resource.

A Content-Security-Policy meta tag (``default-src 'none'``, inline styles and ``data:``
images only) makes the no-network promise hold even if a value ever carried a URL into
markup. Values are HTML-escaped here and nowhere else.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any, Iterable, Sequence

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;margin:0 0 16px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}.warn{color:#9a6700;font-weight:600}
.muted{color:#888}.verdict{font-size:18px;padding:6px 12px;border-radius:6px;display:inline-block}
.verdict.ok{background:#dafbe1}.verdict.bad{background:#ffebe9}.verdict.warn{background:#fff8c5}
.chart{display:block;margin:8px 0 16px;border:1px solid #eee;max-width:100%;height:auto}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
pre{background:#f6f8fa;padding:8px;overflow:auto;max-height:220px}
"""


def page(title: str, subtitle: str, body: Iterable[str]) -> str:
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">{escape(subtitle)}</p>',
        *body,
        "</body></html>",
        "",
    ])


def cell(value: Any) -> str:
    if value is None:
        return '<span class="muted">–</span>'
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        import json

        return escape(json.dumps(value, ensure_ascii=False, default=str))
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return escape(value.isoformat().replace("+00:00", "Z"))
    return escape(str(value))


def mark(ok: bool) -> str:
    return '<span class="ok">✓</span>' if ok else '<span class="bad">✗</span>'


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], raw: Sequence[str] = ()) -> str:
    """Rows as an HTML table; columns named in *raw* hold markup already escaped."""
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for c in columns:
            value = row.get(c)
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            text = value if c in raw else cell(value)
            cells.append(f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def pairs(items: Iterable[tuple[str, Any]]) -> str:
    """A two-column table of name → value."""
    return table([{"name": k, "value": v} for k, v in items], ["name", "value"])


def verdict(ok: bool | None, text: str) -> str:
    cls = "warn" if ok is None else "ok" if ok else "bad"
    return f'<p class="verdict {cls}">{escape(text)}</p>'


def write(path: str, text: str) -> None:
    """Write a report, or raise ConfigError with one line (exit 2)."""
    from bot_core.errors import ConfigError

    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise ConfigError(f"cannot write the HTML report {path}: {exc.strerror or exc}") from None


def check_writable(path: str) -> None:
    """Fail before the work when the report could not be written afterwards."""
    import os

    from bot_core.errors import ConfigError

    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path) or not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise ConfigError(f"cannot write the HTML report {path}: "
                          + ("it is a directory" if os.path.isdir(path) else f"{folder} is not a writable directory"))
