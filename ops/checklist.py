"""The pre-production checklist: load ``checklist.yaml``, evaluate each item against its evidence.

Library first: ``load_checklist(path) -> Checklist``, ``evaluate(checklist, context) ->
list[ItemResult]``, ``report(checklist, results) -> dict`` (the JSON document below),
``verdict(results) -> (verdict, exit_code)``; the renderers for JUnit XML and Markdown are in
:mod:`ops.checklist_render`. ``botctl checklist`` only wires options to these.

Item statuses
    pass     the evidence proves the item
    fail     a blocker's evidence does not prove it                        (exit 1)
    warn     a non-blocker (severity warn/info) whose evidence does not prove it
    skip     ``skip: REASON`` in the checklist: intentionally not applicable
    waived   would be fail/warn, but an active ``waiver`` covers it
    stale    an attestation past its ``expires``                         (exit 1 for a blocker)
    error    could not evaluate: evidence missing, unreadable or inconclusive (exit 2 for a blocker)

A missing attestation (``evidence:`` left empty) is ``fail`` ("not attested"), not ``error``:
the answer to "did the tech lead approve?" is known, and it is no. A waiver covers fail and
warn only; stale is renewed, error is fixed (or the item skipped with a reason).

Exit code (``verdict``): 2 "incomplete" when a blocker is in error, else 1 "blocked" when a
blocker is fail or stale, else 0 "ready". Error wins over fail: the verdict of a checklist that
could not be read through is not trusted, and a missing evidence file is usually a broken
pipeline. A bad checklist (invalid YAML, unknown key/severity/kind/check, a waiver missing
reason/approver/expires) raises :class:`ConfigError` from ``load_checklist`` → exit 2.

JSON output (``--output json``, ``report()``)::

    {
      "checklist": "checklist.yaml",              # the file evaluated
      "evaluated_at": "2025-06-01T12:00:00+00:00",
      "verdict": "ready" | "blocked" | "incomplete",
      "headline": "READY for the automated items; 2 attestations pending (…)",  # names what was not evaluated
      "not_evaluated": ["tech-lead-approval", …],  # attestations skipped under --automated-only
      "exit_code": 0 | 1 | 2,
      "counts": {"pass": 10, "fail": 0, "warn": 1, "skip": 0, "waived": 1, "stale": 0, "error": 0},
      "items": [
        {"id": "coverage", "title": "...", "severity": "blocker" | "warn" | "info",
         "kind": "automated" | "attestation", "check": "coverage" | null,   # null for attestations
         "release_note": 3 | null,                 # the release note's item it models
         "status": "pass" | "fail" | "warn" | "skip" | "waived" | "stale" | "error",
         "detail": "line coverage 83.1% >= 80%",   # one line, why
         "evidence": "reports/coverage.xml" | null, # the file/database read, or an attestation's ref
         "waiver": null | {"reason": str, "approver": str, "expires": ISO, "active": bool}}
      ]
    }

Paths in the checklist are relative to the checklist's folder; paths given as flags
(``Context``) are relative to the working directory, as usual on a command line.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from bot_core.errors import BotctlError, ConfigError

STATUSES = ("pass", "fail", "warn", "skip", "waived", "stale", "error")
SEVERITIES = ("blocker", "warn", "info")
KINDS = ("automated", "attestation")
ITEM_KEYS = {"id", "title", "severity", "kind", "check", "evidence", "waiver", "skip", "release_note"}
WAIVER_KEYS = ("reason", "approver", "expires")
ATTESTATION_KEYS = ("by", "at", "ref", "expires")
REQUIRED = object()  # evidence key without a default

# check -> evidence key -> (type, default). The defaults are what checklist.yaml spells out.
CHECKS: dict[str, dict[str, tuple[type | tuple[type, ...], Any]]] = {
    "migrations": {"db": (str, None)},
    "junit": {"path": (str, "reports/junit.xml"), "classnames": (list, REQUIRED),
              "allow_skipped": (bool, True), "min_executed": (dict, None)},
    "coverage": {"path": (str, "reports/coverage.xml"), "min_line_rate": ((int, float), 0.80)},
    "loadtest": {"path": (str, "reports/loadtest.json"), "min_rate": ((int, float), 50.0),
                 "rate_tolerance": ((int, float), 0.05), "min_duration_s": ((int, float), 120.0),
                 "max_errors": (int, 0), "max_p95_ms": ((int, float), 2000.0)},
    "burst": {"path": (str, "reports/loadtest.json"), "min_burst": (int, 100), "max_duplicates": (int, 0)},
    "alerts": {"path": (str, "reports/alerts.json"), "min_rules": (int, 3)},
    # dialect: the release's target (the production database's dialect); None accepts any.
    "rehearsal": {"path": (str, "reports/rehearsal.json"), "dialect": (str, None)},
}
# Context attribute (a command-line flag) that overrides each check's evidence source.
OVERRIDES = {"migrations": "db", "junit": "junit", "coverage": "coverage", "loadtest": "loadtest_summary",
             "burst": "loadtest_summary", "alerts": "alerts", "rehearsal": "rehearsal"}
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class Waiver:
    reason: str
    approver: str
    expires: datetime  # the first instant it no longer applies (a date covers that whole day, UTC)


@dataclass(frozen=True)
class Item:
    id: str
    title: str
    severity: str
    kind: str
    check: str | None  # None for attestations
    evidence: dict[str, Any] | None  # automated: defaults filled in; attestation: None = not attested
    waiver: Waiver | None = None
    skip: str | None = None
    release_note: int | None = None
    line: int = 0


@dataclass(frozen=True)
class Checklist:
    path: Path
    items: list[Item]


@dataclass
class Context:
    """What the command line adds: evidence overrides, config for the database, the clock."""
    now: datetime | None = None
    db: str | None = None
    junit: str | None = None
    coverage: str | None = None
    loadtest_summary: str | None = None
    alerts: str | None = None
    rehearsal: str | None = None
    # Accept a rehearsal on this dialect instead of the checklist's target (CI, which has no
    # SQL Server); the item's detail says so.
    rehearsal_dialect: str | None = None
    config_path: str | None = None
    # CI evaluates what a machine can prove; people attest at release time.
    automated_only: bool = False


@dataclass
class ItemResult:
    id: str
    title: str
    severity: str
    kind: str
    check: str | None
    release_note: int | None
    status: str
    detail: str
    evidence: str | None
    waiver: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Unreadable(Exception):
    """Evidence missing, unreadable or inconclusive: the item's status is error."""

    def __init__(self, message: str, evidence: str | None = None):
        super().__init__(message)
        self.evidence = evidence


# --- loading ------------------------------------------------------------------------


def find_checklist(start: Path | None = None, name: str = "checklist.yaml") -> Path:
    """``name`` in ``start`` or the nearest parent, stopping at the repository root (.git)."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / name).is_file():
            return folder / name
        if (folder / ".git").exists():
            break
    raise ConfigError(f"no {name} in {start} or its parents up to the repository root; pass --file")


def load_checklist(path: str | Path) -> Checklist:
    """Parse and validate a checklist file; any problem is a ConfigError naming its line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read checklist {path}: {exc.strerror or exc}") from None
    data = _parse_yaml(text, path)
    if not isinstance(data, dict) or not isinstance(data.get("items"), list) or not data["items"]:
        raise ConfigError(f"{path}: expected a mapping with a non-empty 'items' list")
    unknown = set(data) - {"version", "items"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {', '.join(sorted(map(str, unknown)))}")
    if data.get("version", 1) != 1:
        raise ConfigError(f"{path}: unsupported checklist version {data['version']!r} (expected 1)")
    items: list[Item] = []
    for raw in data["items"]:
        item = _item(raw, path)
        if any(i.id == item.id for i in items):
            raise ConfigError(f"{path} line {item.line}: duplicate item id {item.id!r}")
        items.append(item)
    return Checklist(path, items)


def _parse_yaml(text: str, path: Path) -> Any:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
        keys = [k.value for k, _ in node.value]
        dup = next((k for k in keys if keys.count(k) > 1), None)
        if dup is not None:
            raise ConfigError(f"{path} line {node.start_mark.line + 1}: duplicate key {dup!r}")
        value = _Map(loader.construct_mapping(node, deep=True))
        value.line = node.start_mark.line + 1
        return value

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{where}: invalid YAML ({problem})") from None


class _Map(dict):
    line = 0


def _item(raw: Any, path: Path) -> Item:
    line = getattr(raw, "line", 0)
    where = f"{path} line {line}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: each item must be a mapping")
    where += f": item {raw.get('id')!r}"
    unknown = set(raw) - ITEM_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))} "
                          f"(known: {', '.join(sorted(ITEM_KEYS))})")
    for key in ("id", "title", "severity", "kind"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ConfigError(f"{where}: '{key}' is required")
    if not _ID_RE.match(raw["id"]):
        raise ConfigError(f"{where}: id must be lower-case letters, digits and dashes")
    _choice(where, "severity", raw["severity"], SEVERITIES)
    _choice(where, "kind", raw["kind"], KINDS)
    check, evidence = raw.get("check"), raw.get("evidence")
    if evidence is not None and not isinstance(evidence, dict):
        raise ConfigError(f"{where}: 'evidence' must be a mapping")
    if raw["kind"] == "automated":
        if check is None:
            raise ConfigError(f"{where}: an automated item needs 'check' ({', '.join(CHECKS)})")
        _choice(where, "check", check, tuple(CHECKS))
        evidence = _evidence(where, check, evidence or {})
    else:
        if check is not None:
            raise ConfigError(f"{where}: an attestation has no 'check'")
        if evidence and set(evidence) != {"path"}:
            evidence = dict(attestation(evidence, where))
    skip = raw.get("skip")
    if skip is not None and (not isinstance(skip, str) or not skip.strip()):
        raise ConfigError(f"{where}: 'skip' must be the reason the item does not apply")
    note = raw.get("release_note")
    if note is not None and (not isinstance(note, int) or isinstance(note, bool) or note < 1):
        raise ConfigError(f"{where}: 'release_note' must be the release note's item number")
    return Item(raw["id"], raw["title"], raw["severity"], raw["kind"], check, evidence,
                _waiver(raw.get("waiver"), where), skip, note, line)


def _choice(where: str, key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{where}: {key} must be one of {', '.join(choices)}, not {value!r}")


def _evidence(where: str, check: str, given: dict[str, Any]) -> dict[str, Any]:
    spec = CHECKS[check]
    unknown = set(given) - set(spec)
    if unknown:
        raise ConfigError(f"{where}: unknown evidence key(s) {', '.join(sorted(map(str, unknown)))} "
                          f"for check {check} (known: {', '.join(spec)})")
    out: dict[str, Any] = {}
    for key, (kind, default) in spec.items():
        value = given.get(key, default)
        if value is REQUIRED:
            raise ConfigError(f"{where}: evidence '{key}' is required for check {check}")
        wrong = (value is not None and not isinstance(value, kind)) or (isinstance(value, bool) and kind is not bool)
        if wrong or (kind is list and not all(isinstance(v, str) for v in value)) or (
                kind is dict and value is not None and not all(
                    isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v > 0
                    for k, v in value.items())):
            raise ConfigError(f"{where}: evidence '{key}' has the wrong type ({value!r})")
        out[key] = value
    return out


def _waiver(raw: Any, where: str) -> Waiver | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: 'waiver' must be a mapping of {', '.join(WAIVER_KEYS)}")
    missing = [k for k in WAIVER_KEYS if raw.get(k) in (None, "")]
    unknown = set(raw) - set(WAIVER_KEYS)
    if missing or unknown:
        problem = f"is missing {', '.join(missing)}" if missing else f"has unknown key(s) {', '.join(sorted(unknown))}"
        raise ConfigError(f"{where}: waiver {problem} (a waiver needs {', '.join(WAIVER_KEYS)})")
    return Waiver(str(raw["reason"]), str(raw["approver"]), when(raw["expires"], f"{where}: waiver expires",
                                                                 end_of_day=True))


def attestation(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate ``{by, at, ref, expires}``; returns it with ``at``/``expires`` as aware datetimes."""
    missing = [k for k in ATTESTATION_KEYS if raw.get(k) in (None, "")]
    unknown = set(raw) - set(ATTESTATION_KEYS)
    if missing or unknown:
        problem = f"is missing {', '.join(missing)}" if missing else f"has unknown key(s) {', '.join(sorted(unknown))}"
        raise ConfigError(f"{where}: attestation {problem} (it needs {', '.join(ATTESTATION_KEYS)}, "
                          "or 'path' to a file holding them)")
    at = when(raw["at"], f"{where}: attestation at")
    expires = when(raw["expires"], f"{where}: attestation expires", end_of_day=True)
    if expires <= at:
        raise ConfigError(f"{where}: attestation expires before it was given")
    return {"by": str(raw["by"]), "at": at, "ref": str(raw["ref"]), "expires": expires}


def when(value: Any, what: str, end_of_day: bool = False) -> datetime:
    """An ISO date or timezone-aware datetime → aware UTC datetime.

    A date means the start of that day (UTC), or with ``end_of_day`` the start of the next:
    ``expires: 2025-07-01`` is valid through 1 July. A naive datetime is ambiguous: rejected.
    """
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value) if len(value.strip()) == 10 else datetime.fromisoformat(value)
        except ValueError:
            raise ConfigError(f"{what}: {value!r} is not an ISO date or datetime") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ConfigError(f"{what}: {value.isoformat()} has no timezone (add Z or +hh:mm, or give a date)")
        return value.astimezone(timezone.utc)
    if isinstance(value, date):
        start = datetime.combine(value, time(), timezone.utc)
        return start + timedelta(days=1) if end_of_day else start
    raise ConfigError(f"{what}: expected an ISO date or datetime, not {value!r}")


def valid_until(expires: datetime) -> str:
    """``through 2025-07-01`` for a date's expiry, else ``until 2025-07-01 12:00Z``."""
    if expires.time() == time():
        return f"through {(expires - timedelta(days=1)):%Y-%m-%d}"
    return f"until {expires:%Y-%m-%d %H:%M}Z"


# --- evaluating ---------------------------------------------------------------------


def evaluate(checklist: Checklist, context: Context | None = None) -> list[ItemResult]:
    """Evaluate every item; never raises for bad evidence (that is the item's error status)."""
    ctx = context or Context()
    now = ctx.now or datetime.now(timezone.utc)
    return [_evaluate_item(item, checklist.path.parent, ctx, now) for item in checklist.items]


def _evaluate_item(item: Item, base: Path, ctx: Context, now: datetime) -> ItemResult:
    source = _source(item, base, ctx)
    label = _display(source)
    if item.skip:
        status, detail = "skip", item.skip
    elif ctx.automated_only and item.kind == "attestation":
        status, detail = "skip", f"{NOT_EVALUATED} under --automated-only (signed off at release)"
    else:
        try:
            status, detail, label = _EVALUATORS[item.check or "attestation"](item, source, ctx, now, label)
        except Unreadable as exc:
            status, detail, label = "error", str(exc), exc.evidence or label
        except FileNotFoundError:
            status, detail = "error", f"evidence {label} not found"
        except BotctlError as exc:  # e.g. the database cannot be reached
            status, detail = "error", str(exc)
        except KeyError as exc:
            status, detail = "error", f"cannot read {label}: it has no {exc}"
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            status, detail = "error", f"cannot read {label}: {type(exc).__name__}: {exc}"
    if status == "fail" and item.severity != "blocker":
        status = "warn"
    waiver = None
    if item.waiver:
        active = now < item.waiver.expires
        waiver = {"reason": item.waiver.reason, "approver": item.waiver.approver,
                  "expires": item.waiver.expires.isoformat(), "active": active}
        if active and status in ("fail", "warn"):
            status, detail = "waived", f"{detail} — waived by {item.waiver.approver}: {item.waiver.reason}"
        elif not active:
            detail += f" (waiver by {item.waiver.approver} was valid {valid_until(item.waiver.expires)}: ignored)"
    return ItemResult(item.id, item.title, item.severity, item.kind, item.check, item.release_note,
                      status, detail, label, waiver)


def _source(item: Item, base: Path, ctx: Context) -> Path | str | None:
    flag = getattr(ctx, OVERRIDES[item.check]) if item.check else None
    if item.check == "migrations":
        return flag or item.evidence["db"]
    if flag:
        return Path(flag)
    path = (item.evidence or {}).get("path")
    return base / path if path else None


def _display(source: Path | str | None) -> str | None:
    """A path as the user would type it: relative to the working directory when inside it."""
    if isinstance(source, Path) and source.is_absolute():
        try:
            return str(source.relative_to(Path.cwd()))
        except ValueError:
            pass
    return None if source is None else str(source)


Verdict = tuple[str, int]


def verdict(results: list[ItemResult]) -> Verdict:
    blocking = {r.status for r in results if r.severity == "blocker"}
    if "error" in blocking:
        return "incomplete", 2
    if blocking & {"fail", "stale"}:
        return "blocked", 1
    return "ready", 0


NOT_EVALUATED = "attestation: not evaluated"


def not_evaluated(results: list[ItemResult]) -> list[ItemResult]:
    """Attestations left to people (``--automated-only``): the verdict says nothing about them."""
    return [r for r in results if r.status == "skip" and r.detail.startswith(NOT_EVALUATED)]


def headline(results: list[ItemResult]) -> str:
    """The verdict in words, naming what it did not evaluate:
    ``READY for the automated items; 2 attestations pending (tech-lead-approval, production-backup)``."""
    name, _ = verdict(results)
    pending = not_evaluated(results)
    if not pending:
        return name.upper()
    blockers = [r.id for r in pending if r.severity == "blocker"]
    others = [r.id for r in pending if r.severity != "blocker"]
    parts = [f"{len(blockers)} attestation{'s' * (len(blockers) != 1)} pending ({', '.join(blockers)})"] if blockers else []
    if others:
        parts.append(f"{len(others)} non-blocking not evaluated ({', '.join(others)})")
    scope = " for the automated items" if name == "ready" else ""
    return f"{name.upper()}{scope}; " + "; ".join(parts)


def report(checklist: Checklist, results: list[ItemResult], now: datetime | None = None) -> dict[str, Any]:
    """The JSON document of the module docstring."""
    name, code = verdict(results)
    return {
        "checklist": str(checklist.path),
        "evaluated_at": (now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        "verdict": name,
        "headline": headline(results),
        "not_evaluated": [r.id for r in not_evaluated(results)],
        "exit_code": code,
        "counts": {s: sum(r.status == s for r in results) for s in STATUSES},
        "items": [r.to_dict() for r in results],
    }


# --- evaluators: (item, source, ctx, now, label) -> (status, detail, label) -----------

Outcome = tuple[str, str, "str | None"]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise Unreadable(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None


def _read_xml(path: Path) -> Any:
    import xml.etree.ElementTree as ET

    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise Unreadable(f"{path} is not valid XML ({exc})") from None


def _migrations(item: Item, source: Any, ctx: Context, now: datetime, label: Any) -> Outcome:
    from bot_core.config import load_config
    from bot_core.storage import database_from_config, parse_db_url
    from migrations.runner import MigrationRunner

    cfg = load_config(ctx.config_path, flags={"db": source})
    url = parse_db_url(cfg.get("db"))
    label = url.redacted()
    if url.dialect == "sqlite" and url.database != ":memory:" and not Path(url.database).is_file():
        raise Unreadable(f"{label}: database file does not exist", label)
    runner = MigrationRunner(database_from_config(cfg))
    states = runner.status()
    if not states:
        raise Unreadable(f"no {url.dialect} migrations found")
    not_applied = [f"{s.version} {s.state}" for s in states if s.state != "applied"]
    problems = [p.message for p in runner.validate()]
    if not_applied or problems:
        return "fail", "; ".join(([f"not applied: {', '.join(not_applied)}"] if not_applied else []) +
                                 problems[:3]), label
    drift = _schema_drift(runner.db) if url.dialect == "sqlite" else None
    if drift:
        return "fail", f"schema differs from a fresh install at {states[-1].version}: {'; '.join(drift[:3])}", label
    compared = ", schema equals a fresh install" if drift is not None else ""
    return "pass", f"{len(states)} migrations applied (at {states[-1].version}), validate clean{compared}", label


def _schema_drift(db: Any) -> list[str]:
    """The differences between ``db`` and a scratch SQLite database migrated from scratch: a
    hand-made change, or an upgrade path that ends somewhere a fresh install does not."""
    import tempfile

    from bot_core.storage import open_database
    from migrations.introspect import diff, introspect
    from migrations.runner import MigrationRunner

    with tempfile.TemporaryDirectory(prefix="botctl-checklist-") as folder:
        fresh = open_database(f"sqlite:///{Path(folder) / 'fresh.db'}")
        MigrationRunner(fresh).up()
        return diff(introspect(fresh), introspect(db))


def _junit(item: Item, path: Path, ctx: Context, now: datetime, label: Any) -> Outcome:
    prefixes = item.evidence["classnames"]
    cases = [c for c in _read_xml(path).iter("testcase") if any(_under(c, p) for p in prefixes)]
    if not cases:
        raise Unreadable(f"no testcases of {', '.join(prefixes)} in {label}")
    failed = [c for c in cases if c.find("failure") is not None or c.find("error") is not None]
    skipped = [c for c in cases if c.find("skipped") is not None and c not in failed]
    # A floor of executed (not skipped) cases per classname prefix: a module-wide skip, or a
    # suite that silently stopped being collected, cannot hide among the other cases.
    for prefix, minimum in (item.evidence.get("min_executed") or {}).items():
        ran = sum(1 for c in cases if c not in skipped and _under(c, prefix))
        if ran < minimum:
            raise Unreadable(f"only {ran} test cases of {prefix} executed, {minimum} required, so not evaluated")
    if failed:
        names = ", ".join(f"{c.get('classname')}::{c.get('name')}" for c in failed[:3])
        return "fail", f"{len(failed)} of {len(cases)} failed: {names}{' …' if len(failed) > 3 else ''}", label
    if skipped and (not item.evidence["allow_skipped"] or len(skipped) == len(cases)):
        why = (skipped[0].find("skipped").get("message") or "").strip()
        raise Unreadable(f"{len(skipped)} of {len(cases)} skipped, so not evaluated"
                         + (f" (first: {why[:120]})" if why else ""))
    return "pass", f"{len(cases) - len(skipped)} passed" + (f", {len(skipped)} skipped" if skipped else ""), label


def _under(case: Any, prefix: str) -> bool:
    classname = case.get("classname", "")
    return classname == prefix or classname.startswith(prefix + ".")


def _coverage(item: Item, path: Path, ctx: Context, now: datetime, label: Any) -> Outcome:
    root = _read_xml(path)
    if root.tag != "coverage" or root.get("line-rate") is None:
        raise Unreadable(f"{label} is not a Cobertura report (no coverage line-rate)")
    rate, minimum = float(root.get("line-rate")), item.evidence["min_line_rate"]
    status = "pass" if rate >= minimum else "fail"
    return status, f"line coverage {rate:.1%} {'>=' if status == 'pass' else '<'} {minimum:.0%}", label


def _loadtest(item: Item, path: Path, ctx: Context, now: datetime, label: Any) -> Outcome:
    s, ev = _read_json(path), item.evidence
    p95 = s["latency_ms"]["p95"]
    if p95 is None or not s["requests"]:
        raise Unreadable(f"{label} recorded no requests")
    problems = []
    if s["rate_target"] < ev["min_rate"]:
        problems.append(f"target rate {s['rate_target']:g}/s < {ev['min_rate']:g}/s")
    if s["rate_achieved"] < ev["min_rate"] * (1 - ev["rate_tolerance"]):
        problems.append(f"achieved {s['rate_achieved']:g}/s < {ev['min_rate'] * (1 - ev['rate_tolerance']):g}/s")
    if s["duration_s"] < ev["min_duration_s"]:
        problems.append(f"ran {s['duration_s']:g} s < {ev['min_duration_s']:g} s"
                        + (" (a shortened run cannot prove the duration bar)" if s.get("shortened") else ""))
    if s["errors"] > ev["max_errors"]:
        problems.append(f"{s['errors']} errors > {ev['max_errors']}")
    if p95 >= ev["max_p95_ms"]:
        problems.append(f"p95 {p95:g} ms >= {ev['max_p95_ms']:g} ms")
    if problems:
        return "fail", "; ".join(problems), label
    return "pass", (f"{s['rate_achieved']:g} req/s for {s['duration_s']:g} s, {s['errors']} errors, "
                    f"p95 {p95:g} ms"), label


def _burst(item: Item, path: Path, ctx: Context, now: datetime, label: Any) -> Outcome:
    s, ev = _read_json(path), item.evidence
    burst, verify = s.get("burst"), s.get("verify")
    if not burst:
        raise Unreadable(f"{label} has no burst (run botctl loadtest --burst {ev['min_burst']} --verify)")
    if verify is None:
        raise Unreadable(f"{label} has no verify section (run botctl loadtest --verify)")
    duplicates = verify["duplicate_reports"] + verify["duplicate_replies"]
    problems = []
    if burst["size"] < ev["min_burst"]:
        problems.append(f"burst of {burst['size']} < {ev['min_burst']}")
    if duplicates > ev["max_duplicates"]:
        problems.append(f"{verify['duplicate_reports']} duplicate reports, "
                        f"{verify['duplicate_replies']} duplicate replies")
    if not verify["ok"]:
        problems.append("verify failed: " + "; ".join(verify.get("violations") or ["(no violations listed)"])[:200])
    if problems:
        return "fail", "; ".join(problems), label
    return "pass", (f"burst of {burst['size']} ({burst['mode']}): {duplicates} duplicates, "
                    f"{verify['unprocessed']} unprocessed, {verify['concurrency_retries']} locking retries"), label


def _alerts(item: Item, path: Path, ctx: Context, now: datetime, label: Any) -> Outcome:
    doc = _read_json(path)
    resources = doc.get("resources") if isinstance(doc, dict) else None
    if resources is None:
        raise Unreadable(f"{label} is not an ARM template (no resources)")
    if isinstance(resources, dict):  # languageVersion 2.0: symbolic names
        resources = list(resources.values())
    rules = [r for r in resources if isinstance(r, dict)
             and str(r.get("type", "")).lower() == "microsoft.insights/scheduledqueryrules"]
    status = "pass" if len(rules) >= item.evidence["min_rules"] else "fail"
    return status, f"{len(rules)} scheduled query rule(s), {item.evidence['min_rules']} needed", label


def _rehearsal(item: Item, path: Path, ctx: Context, now: datetime, label: Any) -> Outcome:
    doc = _read_json(path)
    if not (isinstance(doc, dict) and doc.get("check") == "rollback-rehearsal"
            and isinstance(doc.get("identical"), bool)):
        raise Unreadable(f"{label} is not 'botctl migrate rehearse --evidence' output")
    # Incomplete evidence proves nothing: without the versions it covered it cannot be told fresh.
    missing = [k for k, kind in (("versions", list), ("steps", list), ("dialect", str), ("finished_at", str))
               if not isinstance(doc.get(k), kind) or not doc[k]]
    if missing:
        raise Unreadable(f"{label} is incomplete (no {', '.join(missing)}): rehearse again")
    target = item.evidence.get("dialect")
    accepted = ctx.rehearsal_dialect or target
    got = f"{doc['dialect']}" + (f" {doc['server_version']}" if doc.get("server_version") else "")
    if accepted and doc["dialect"] != accepted:
        return "fail", (f"rehearsed on {got}; this release targets {accepted}: run botctl migrate rehearse "
                        f"--db <scratch {accepted} database> --evidence {label}"), label
    if not doc["identical"]:
        differing = [s["action"] for s in doc.get("steps", []) if s.get("differences")]
        return "fail", f"schemas differ after: {', '.join(differing) or '(steps not listed)'}", label
    from migrations.scripts import load_migrations  # the rehearsal must cover every migration there is now

    missing = [m.version_label for m in load_migrations(doc["dialect"]) if m.version_label not in doc["versions"]]
    if missing:
        return "fail", f"rehearsal predates migration(s) {', '.join(missing)}: rehearse again", label
    stand_in = (f"; NOT the release's target {target} (accepted by --rehearsal-dialect {accepted})"
                if target and ctx.rehearsal_dialect and target != ctx.rehearsal_dialect else "")
    return "pass", (f"up → down → up on {got}: schemas identical "
                    f"({len(doc['steps'])} steps, {doc['finished_at']}){stand_in}"), label


def _attestation(item: Item, source: Path | None, ctx: Context, now: datetime, label: Any) -> Outcome:
    if source is not None:  # evidence: {path: FILE} holding {by, at, ref, expires}
        raw = _read_json(source) if source.suffix == ".json" else _parse_yaml(source.read_text("utf-8"), source)
        try:
            att = attestation(raw if isinstance(raw, dict) else {}, str(source))
        except ConfigError as exc:
            raise Unreadable(str(exc)) from None
    elif item.evidence:
        att = item.evidence
    else:
        return "fail", "not attested (fill in evidence: by, at, ref, expires)", None
    said = f"{att['by']} on {att['at']:%Y-%m-%d} (ref {att['ref']})"
    if now >= att["expires"]:
        return "stale", f"attested by {said}, expired (was valid {valid_until(att['expires'])})", att["ref"]
    return "pass", f"attested by {said}, valid {valid_until(att['expires'])}", att["ref"]


_EVALUATORS: dict[str, Callable[..., Outcome]] = {
    "migrations": _migrations, "junit": _junit, "coverage": _coverage, "loadtest": _loadtest,
    "burst": _burst, "alerts": _alerts, "rehearsal": _rehearsal, "attestation": _attestation,
}
