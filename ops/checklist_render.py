"""Checklist renderers specific to CI: JUnit XML and GitHub-flavoured Markdown.

Table and JSON go through ``cli.output.render`` (rows = ``report()["items"]``).

JUnit agrees with the exit code: only what blocks the release is a ``<failure>`` (a blocker's
fail or stale) or an ``<error>`` (a blocker's error); skip and waived are ``<skipped>``; a
non-blocker's warn, stale or error passes with the reason in ``<system-out>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from bot_core.errors import ConfigError
from ops.checklist import STATUSES, ItemResult, headline, verdict

ICONS = {"pass": "✅", "fail": "❌", "warn": "⚠️", "skip": "⏭️", "waived": "🟡", "stale": "⌛", "error": "❗"}


def render_junit(results: Sequence[ItemResult], name: str = "botctl checklist") -> str:
    import xml.etree.ElementTree as ET

    blocking = [r for r in results if r.severity == "blocker"]
    failures = sum(r.status in ("fail", "stale") for r in blocking)
    errors = sum(r.status == "error" for r in blocking)
    skipped = sum(r.status in ("skip", "waived") for r in results)
    counts = {"tests": str(len(results)), "failures": str(failures), "errors": str(errors), "skipped": str(skipped)}
    root = ET.Element("testsuites", name=name, **counts)
    suite = ET.SubElement(root, "testsuite", name="checklist", **counts)
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=f"checklist.{r.kind}", name=r.id)
        props = ET.SubElement(case, "properties")
        for key in ("title", "severity", "status", "evidence"):
            ET.SubElement(props, "property", name=key, value=str(getattr(r, key) or ""))
        blocks = r.severity == "blocker"
        if blocks and r.status in ("fail", "stale"):
            ET.SubElement(case, "failure", message=r.detail, type=r.status).text = r.detail
        elif blocks and r.status == "error":
            ET.SubElement(case, "error", message=r.detail, type="could-not-evaluate").text = r.detail
        elif r.status in ("skip", "waived"):
            ET.SubElement(case, "skipped", message=f"{r.status}: {r.detail}")
        elif r.status != "pass":
            ET.SubElement(case, "system-out").text = f"{r.status}: {r.detail}"
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render_markdown(results: Sequence[ItemResult], title: str = "Pre-production checklist") -> str:
    counts = ", ".join(f"{n} {s}" for s in STATUSES if (n := sum(r.status == s for r in results)))
    lines = [f"## {title}: {headline(list(results))}", "", counts, "",
             "| status | item | title | severity | detail |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {ICONS[r.status]} {r.status} | `{r.id}` | {_cell(r.title)} | {r.severity} "
                     f"| {_cell(r.detail)} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def write_markdown(text: str, md_out: str | Path | None = None, step_summary: str | Path | None = None) -> None:
    """Write ``--md-out`` (replaced) and append to ``$GITHUB_STEP_SUMMARY`` (never overwritten)."""
    try:
        if md_out:
            Path(md_out).write_text(text, encoding="utf-8")
        if step_summary:
            with open(step_summary, "a", encoding="utf-8") as fh:
                fh.write(text + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot write the Markdown summary: {exc}") from None


#: Glyphs every system font has (the Markdown icons are emoji, which headless browsers may lack).
HTML_ICONS = {"pass": "✓", "fail": "✗", "warn": "⚠", "skip": "–", "waived": "≈", "stale": "✗", "error": "!"}
STATUS_CLASS = {"pass": "ok", "fail": "bad", "error": "bad", "stale": "bad", "warn": "warn", "waived": "warn",
                "skip": "muted"}


def render_html(results: Sequence[ItemResult], title: str = "Pre-production checklist",
                source: str = "checklist.yaml", evaluated_at: str = "", base: Path | None = None) -> str:
    """The checklist as a status board: one row per item, its status, why, and a link to its evidence.

    Evidence that names an existing file (relative to *base*, default the working directory)
    links to it; an http(s) reference (an attestation's ``ref``) links as is; anything else
    (a database URL) is shown as text.
    """
    from html import escape

    from ops import report_html as h

    name, _ = verdict(list(results))
    counts = ", ".join(f"{n} {s}" for s in STATUSES if (n := sum(r.status == s for r in results)))
    rows = []
    for r in results:
        css = STATUS_CLASS.get(r.status, "")
        rows.append({
            "status": f'<span class="{css}">{HTML_ICONS[r.status]} {escape(r.status)}</span>',
            "item": f"<code>{escape(r.id)}</code>", "title": escape(r.title), "severity": escape(r.severity),
            "detail": escape(r.detail) + (f"<br><span class=muted>waiver: {escape(r.waiver['reason'])} "
                                          f"({escape(r.waiver['approver'])}, until {escape(str(r.waiver['expires']))})"
                                          "</span>" if r.waiver else ""),
            "evidence": evidence_link(r.evidence, base or Path.cwd()),
        })
    body = [h.verdict({"ready": True, "blocked": False}.get(name), f"{headline(list(results))} ({counts})"),
            h.table(rows, ["status", "item", "title", "severity", "detail", "evidence"],
                    raw=["status", "item", "title", "severity", "detail", "evidence"])]
    return h.page(title, f"{source} · evaluated {evaluated_at}".rstrip(" ·"), body)


def evidence_link(evidence: str | None, base: Path) -> str:
    from html import escape

    if not evidence:
        return '<span class="muted">–</span>'
    if evidence.startswith(("https://", "http://")):
        return f'<a href="{escape(evidence)}">{escape(evidence)}</a>'
    path = Path(evidence) if Path(evidence).is_absolute() else base / evidence
    if "://" not in evidence and path.exists():
        return f'<a href="{escape(path.resolve().as_uri())}">{escape(evidence)}</a>'
    return f"<code>{escape(evidence)}</code>"
