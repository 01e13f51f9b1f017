"""T-SQL checks that need no SQL Server: GO-batch splitting and a linter for migration scripts.

``split_batches`` is also what the migration runner executes, so this module imports nothing
outside the standard library at the top: sqlglot is imported lazily by the checks only.

Rules of ``check_script`` (each finding names one):

* ``parse``: every batch parses with sqlglot (``read="tsql"``); a fallback to ``exp.Command``
  or a T-SQL keyword read as a name (sqlglot's silent misparse of some BEGIN…END forms) counts.
* ``named-default``: DEFAULTs in CREATE TABLE / ALTER TABLE ADD are named constraints, so a down
  script can drop them.
* ``merge-holdlock``: MERGE targets carry ``WITH (HOLDLOCK)`` or SERIALIZABLE, else concurrent
  upserts race into key violations.
* ``drop-order``: DROP COLUMN comes after the DROP INDEX / DROP CONSTRAINT of every index and
  constraint on that column (SQL Server refuses the drop otherwise).
* ``go-before-use``: a column added by ALTER TABLE ADD is not used later in the same batch:
  SQL Server compiles a batch whole, before the column exists.
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, NamedTuple

if TYPE_CHECKING:  # pragma: no cover
    from sqlglot import exp

__all__ = ["Batch", "Finding", "GoCountError", "Schema",
           "split_batches", "check_script", "check_scripts", "check_directory"]


# --- GO batches -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Batch:
    text: str  # stripped of surrounding whitespace
    line: int  # 1-based line of the batch's first non-blank character
    repeat: int = 1  # n of `GO n`


class GoCountError(ValueError):
    """`GO 0`: sqlcmd rejects it, and running a batch zero times would hide it."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


# A separator line: GO or GO n, any case, blanks around, an optional trailing -- comment.
# [^\S\n] is whitespace but newline, so a CRLF line's \r is a trailing blank.
_GO_LINE = re.compile(r"[^\S\n]*go(?:[^\S\n]+(\d+))?[^\S\n]*(?:--[^\n]*)?", re.IGNORECASE)
_SPECIAL = re.compile(r"['\"\[\n]|--|/\*")  # what can start a string, identifier, comment or line
_BLOCK_EDGE = re.compile(r"/\*|\*/")
_CLOSER = {"'": "'", '"': '"', "[": "]"}


def _skip(text: str, i: int, token: str) -> int:
    """Index just past the literal, quoted identifier or comment that starts at i (len(text) if unclosed)."""
    n = len(text)
    if token == "--":  # stop at the newline so the next line is still checked for GO
        end = text.find("\n", i)
        return n if end < 0 else end
    if token == "/*":  # T-SQL block comments nest
        depth, k = 1, i + 2
        while depth:
            m = _BLOCK_EDGE.search(text, k)
            if m is None:
                return n
            depth += 1 if m.group() == "/*" else -1
            k = m.end()
        return k
    closer = _CLOSER[token]  # '…' and "…" double their quote to escape it, […] doubles ]
    k = i + 1
    while True:
        end = text.find(closer, k)
        if end < 0:
            return n
        if text.startswith(closer, end + 1):
            k = end + 2
            continue
        return end + 1


def split_batches(text: str) -> list[Batch]:
    """Split a script on GO lines exactly as sqlcmd does; batches of blanks and comments only are skipped.

    A separator is a line holding only ``GO`` or ``GO n`` (any case, blanks and a trailing ``--``
    comment allowed) that is not inside a string, a bracketed or double-quoted identifier or a
    block comment. Raises GoCountError (a ValueError) for ``GO 0``.
    """
    batches: list[Batch] = []
    n = len(text)
    counted_to, counted_line = 0, 1

    def line_of(index: int) -> int:  # positions only move forward: count newlines incrementally
        nonlocal counted_to, counted_line
        counted_line += text.count("\n", counted_to, index)
        counted_to = index
        return counted_line

    def emit(start: int, end: int, has_code: bool, repeat: int) -> None:
        if has_code:
            body = text[start:end]
            lead = len(body) - len(body.lstrip())
            batches.append(Batch(body.strip(), line_of(start + lead), repeat))

    start = pos = 1 if text.startswith("\ufeff") else 0
    has_code, at_line_start = False, True
    while True:
        if at_line_start:
            at_line_start = False
            eol = text.find("\n", pos)
            eol = n if eol < 0 else eol
            go = _GO_LINE.fullmatch(text, pos, eol)
            if go:
                repeat = int(go.group(1) or 1)
                if repeat < 1:
                    raise GoCountError(line_of(pos), f"GO {go.group(1)}: the count must be at least 1")
                emit(start, pos, has_code, repeat)
                start = pos = eol + 1
                has_code, at_line_start = False, True
                if pos > n:
                    break
                continue
        m = _SPECIAL.search(text, pos)
        end = n if m is None else m.start()
        has_code = has_code or (end > pos and not text[pos:end].isspace())
        if m is None:
            break
        token = m.group()
        if token == "\n":
            pos, at_line_start = m.end(), True
            continue
        has_code = has_code or token not in ("--", "/*")
        pos = _skip(text, end, token)
    if start <= n:
        emit(start, n, has_code, 1)
    return batches


# --- findings and the schema the scripts build -----------------------------------------------

@dataclass(frozen=True)
class Finding:
    rule: str
    filename: str
    line: int  # 1-based, in the file
    message: str

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}: [{self.rule}] {self.message}"


class _Object(NamedTuple):
    label: str  # "index", "default constraint", "constraint"
    name: str | None  # None: a system-named constraint
    columns: frozenset[str]  # lower case


@dataclass
class Schema:
    """Indexes and constraints created by the scripts checked so far, per table ("dbo.t", lower case).

    Keys are ("index" | "constraint", lower-case name): what DROP COLUMN has to wait for.
    """

    tables: dict[str, dict[tuple[str, str], _Object]] = field(default_factory=dict)

    def copy(self) -> Schema:
        return Schema({table: dict(objects) for table, objects in self.tables.items()})


class _Event(NamedTuple):
    """A schema change of one statement, in script order, for the drop-order rule."""

    op: str  # "create", "drop", "drop-table", "drop-columns", "commit" (a migration's end in plan output)
    table: str
    line: int
    key: tuple[str, str] | None = None
    obj: _Object | None = None
    columns: dict[str, tuple[str, int]] | None = None  # drop-columns: lower name -> (name, line)


# --- sqlglot helpers ---------------------------------------------------------------------------

_KEYWORDS_AS_NAMES = {"BEGIN", "END", "ELSE", "INDEX", "CONSTRAINT"}  # reserved in T-SQL


@contextmanager
def _quiet_sqlglot() -> Iterator[None]:
    """Mute sqlglot's "Falling back to parsing as a 'Command'" warning; the Command is reported instead."""
    log = logging.getLogger("sqlglot")
    was = log.disabled
    log.disabled = True
    try:
        yield
    finally:
        log.disabled = was


def _line(node: exp.Expr, batch: Batch) -> int:
    """File line of a node: its first identifier's (sqlglot keeps positions on identifiers only)."""
    from sqlglot import exp

    lines = [i.meta["line"] for i in node.find_all(exp.Identifier) if "line" in i.meta]
    return batch.line + min(lines) - 1 if lines else batch.line


def _command_line(command: exp.Command, batch: Batch) -> int:
    # A Command holds no identifiers, only its raw text (keyword + rest): find that text instead.
    rest = command.expression if isinstance(command.expression, str) else ""
    at = batch.text.find(command.name + rest)
    return batch.line + batch.text.count("\n", 0, at) if at >= 0 else _line(command, batch)


def _table_name(table: exp.Expr) -> str:
    return f"{table.text('db') or 'dbo'}.{table.name}"


def _table_key(table: exp.Expr) -> str:  # T-SQL names are case-insensitive (default collations)
    return _table_name(table).lower()


def _flatten(node: exp.Expr | None) -> Iterator[exp.Expr]:
    """Statements inside IF / WHILE / BEGIN…END (a guarded statement counts as a statement), conditions too."""
    from sqlglot import exp

    if node is None or isinstance(node, exp.EndStatement):
        return
    if isinstance(node, exp.Alias) and isinstance(node.this, exp.IfBlock):  # misparse, reported as parse
        node = node.this
    if isinstance(node, exp.IfBlock):
        yield node.this
        yield from _flatten(node.args.get("true"))
        yield from _flatten(node.args.get("false") or None)
    elif isinstance(node, exp.WhileBlock):
        yield node.this
        yield from _flatten(node.args.get("body"))
    elif isinstance(node, exp.Block):
        for statement in node.expressions:
            yield from _flatten(statement)
    else:
        yield node


def _parse(batch: Batch, filename: str, findings: list[Finding]) -> list[exp.Expr]:
    """The batch's statements (flattened); parse findings are appended."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, SqlglotError

    def report(line: int, message: str) -> None:
        findings.append(Finding("parse", filename, line, message))

    try:
        with _quiet_sqlglot():
            trees = [t for t in sqlglot.parse(batch.text, read="tsql") if t is not None]
    except SqlglotError as error:  # TokenError (an unclosed string…) carries no position
        first = error.errors[0] if isinstance(error, ParseError) and error.errors else {}
        line = batch.line + first["line"] - 1 if first.get("line") else batch.line
        report(line, f"sqlglot cannot parse this batch: {first.get('description') or error}")
        return []
    for tree in trees:
        for command in tree.find_all(exp.Command):
            text = " ".join(command.sql(dialect="tsql").split())[:60]
            report(_command_line(command, batch), f"unsupported syntax, sqlglot fell back to a Command: {text}")
        for ident in tree.find_all(exp.Identifier):
            if not ident.quoted and ident.name.upper() in _KEYWORDS_AS_NAMES:
                report(_line(ident, batch), f"sqlglot read the keyword {ident.name} as a name: this statement is "
                       "misparsed (end each statement inside BEGIN…END with ';')")
    return [s for tree in trees for s in _flatten(tree)]


# --- rules over one batch ----------------------------------------------------------------------

def _is_temporary(create: exp.Expr) -> bool:
    table = create.this.this if create.this else None
    return bool(table is not None and table.this is not None and table.this.args.get("temporary"))


def _column_defs(statement: exp.Expr) -> Iterator[tuple[str, exp.Expr]]:
    """(table, ColumnDef) of CREATE TABLE and ALTER TABLE … ADD, the only places a DEFAULT is a constraint."""
    from sqlglot import exp

    if isinstance(statement, exp.Create) and isinstance(statement.this, exp.Schema):
        if not _is_temporary(statement):  # #temp constraint names collide across sessions: left unnamed
            table = _table_name(statement.this.this)
            yield from ((table, c) for c in statement.this.expressions if isinstance(c, exp.ColumnDef))
    elif isinstance(statement, exp.Alter):
        table = _table_name(statement.this)
        yield from ((table, c) for c in statement.args.get("actions") or [] if isinstance(c, exp.ColumnDef))


def _check_named_defaults(statement: exp.Expr, batch: Batch, filename: str) -> Iterator[Finding]:
    from sqlglot import exp

    for table, column in _column_defs(statement):
        for constraint in column.args.get("constraints") or []:
            if isinstance(constraint.args.get("kind"), exp.DefaultColumnConstraint) and not constraint.this:
                yield Finding("named-default", filename, _line(column, batch),
                              f"DEFAULT of {table}.{column.name} is unnamed: write CONSTRAINT "
                              f"DF_{table.split('.')[-1]}_{column.name} DEFAULT … so the down script can drop it")


def _check_merges(statement: exp.Expr, batch: Batch, filename: str) -> Iterator[Finding]:
    from sqlglot import exp

    for merge in statement.find_all(exp.Merge):
        target = merge.this
        hints = {v.name.upper() for h in target.args.get("hints") or [] for v in h.expressions}
        if not hints & {"HOLDLOCK", "SERIALIZABLE"}:
            yield Finding("merge-holdlock", filename, _line(target, batch),
                          f"MERGE into {_table_name(target)} without WITH (HOLDLOCK): concurrent upserts "
                          "race into duplicate-key errors")


def _column_uses(statement: exp.Expr) -> Iterator[exp.Expr]:
    """Nodes naming a column: Column, and the bare identifiers of column lists (INSERT (…), INCLUDE (…))."""
    from sqlglot import exp

    for node in statement.walk():
        if isinstance(node, exp.Column) or (
            isinstance(node, exp.Identifier) and node.arg_key in ("expressions", "include")
            and isinstance(node.parent, (exp.Schema, exp.IndexParameters))
        ):
            yield node


def _check_go_before_use(statements: list[exp.Expr], batch: Batch, filename: str) -> Iterator[Finding]:
    from sqlglot import exp

    added: dict[str, dict[str, tuple[str, int]]] = {}  # table key -> column key -> (table.column, line of ADD)
    for statement in statements:
        tables = {_table_key(t) for t in statement.find_all(exp.Table)} & added.keys()
        seen: set[str] = set()  # one finding per column and statement
        for use in _column_uses(statement) if tables else ():
            hit = next((added[t][use.name.lower()] for t in tables if use.name.lower() in added[t]), None)
            if hit and hit[0] not in seen:
                seen.add(hit[0])
                yield Finding("go-before-use", filename, _line(use, batch),
                              f"{hit[0]} is added at line {hit[1]} in the same batch: "
                              "put GO between adding a column and using it")
        if isinstance(statement, exp.Alter):
            for table, column in _column_defs(statement):
                where = (f"{table}.{column.name}", _line(column, batch))
                added.setdefault(table.lower(), {})[column.name.lower()] = where


# --- drop-order: schema events and their replay ------------------------------------------------

_OBJECT_CONSTRAINTS = ("DefaultColumnConstraint", "PrimaryKeyColumnConstraint", "UniqueColumnConstraint",
                       "CheckColumnConstraint", "Reference")  # column constraints that are schema objects


def _constraint_events(table: str, node: exp.Expr, batch: Batch) -> Iterator[_Event]:
    """Constraints a ColumnDef or a table-level CONSTRAINT creates, with the columns they use."""
    from sqlglot import exp

    line = _line(node, batch)
    if isinstance(node, exp.ColumnDef):
        for constraint in node.args.get("constraints") or []:
            kind = constraint.args.get("kind")
            if type(kind).__name__ in _OBJECT_CONSTRAINTS:
                label = "default constraint" if isinstance(kind, exp.DefaultColumnConstraint) else "constraint"
                name = constraint.name or None
                key = name.lower() if name else f"<system-named {label} on {node.name.lower()}>"
                yield _Event("create", table, line, ("constraint", key),
                             _Object(label, name, frozenset({node.name.lower()})))
    elif isinstance(node, exp.Constraint):  # CONSTRAINT x UNIQUE (a, b) / CHECK (…) / FOREIGN KEY (a) …
        columns = {i.name.lower() for e in node.expressions for i in e.find_all(exp.Identifier)
                   if not i.find_ancestor(exp.Reference)}  # a foreign key's referenced columns are elsewhere
        yield _Event("create", table, line, ("constraint", node.name.lower()),
                     _Object("constraint", node.name, frozenset(columns)))


def _events(statement: exp.Expr, batch: Batch) -> Iterator[_Event]:
    from sqlglot import exp

    if isinstance(statement, exp.Create) and isinstance(statement.this, exp.Index):
        index = statement.this
        columns = frozenset(u.name.lower() for u in _column_uses(index))  # key, INCLUDE and WHERE columns
        yield _Event("create", _table_key(index.args["table"]), _line(statement, batch),
                     ("index", index.name.lower()), _Object("index", index.name, columns))
    elif isinstance(statement, exp.Create) and isinstance(statement.this, exp.Schema):
        table = _table_key(statement.this.this)
        for node in statement.this.expressions:
            yield from _constraint_events(table, node, batch)
    elif isinstance(statement, exp.Drop) and statement.args.get("kind") == "INDEX":
        name = statement.args["tables"][0]
        on = statement.args.get("cluster")  # DROP INDEX i ON t; the old form DROP INDEX [s.]t.i parses as a name
        table = _table_key(on.this) if on else f"{name.text('catalog') or 'dbo'}.{name.text('db')}".lower()
        yield _Event("drop", table, _line(statement, batch), ("index", name.name.lower()),
                     _Object("index", name.name, frozenset()))
    elif isinstance(statement, exp.Commit):
        yield _Event("commit", "", batch.line)
    elif isinstance(statement, exp.Drop) and statement.args.get("kind") == "TABLE":
        for table in statement.args.get("tables") or []:
            yield _Event("drop-table", _table_key(table), _line(table, batch))
    elif isinstance(statement, exp.Alter) and statement.args.get("kind") == "TABLE":
        table = _table_key(statement.this)
        for action in statement.args.get("actions") or []:
            if isinstance(action, exp.ColumnDef):
                yield from _constraint_events(table, action, batch)
            elif isinstance(action, exp.AddConstraint):
                for constraint in action.expressions:
                    yield from _constraint_events(table, constraint, batch)
            elif isinstance(action, exp.Drop) and action.args.get("kind") == "CONSTRAINT":
                for name in action.args.get("tables") or []:
                    yield _Event("drop", table, _line(name, batch), ("constraint", name.name.lower()),
                                 _Object("constraint", name.name, frozenset()))
            elif isinstance(action, exp.Drop) and action.args.get("kind") == "COLUMN":
                columns = {c.name.lower(): (c.name, _line(c, batch)) for c in action.args.get("tables") or []}
                yield _Event("drop-columns", table, _line(action, batch), columns=columns)


def _replay(events: list[_Event], schema: Schema, filename: str) -> Iterator[Finding]:
    """Apply the script's events to the schema; a DROP COLUMN is late if anything still uses its column."""
    reported_later: set[int] = set()
    for position, event in enumerate(events):
        if event.op == "commit":
            continue
        objects = schema.tables.setdefault(event.table, {})
        if event.op == "create":
            objects[event.key] = event.obj
        elif event.op == "drop":
            objects.pop(event.key, None)
        elif event.op == "drop-table":
            schema.tables.pop(event.table, None)
        else:
            dropped, known = event.columns, set(objects)
            for key, obj in list(objects.items()):
                hit = [dropped[c] for c in dropped if c in obj.columns]
                if hit:
                    what = f"{obj.label} {obj.name}" if obj.name else f"a system-named {obj.label}"
                    yield Finding("drop-order", filename, hit[0][1],
                                  f"DROP COLUMN {', '.join(n for n, _ in hit)} while {what} still uses it: "
                                  f"drop the {obj.label} first")
                    del objects[key]  # reported once; the rest of the script sees it gone
            for later_position, later in enumerate(events[position + 1:], position + 1):
                if later.op == "commit":  # a later migration's drops say nothing about this one's columns
                    break
                # An index or constraint this script drops later, on this table, of unknown columns:
                # it may be on a dropped column and SQL Server would refuse the DROP COLUMN.
                if (later.op == "drop" and later.table == event.table and later.key not in known
                        and later_position not in reported_later):
                    reported_later.add(later_position)
                    yield Finding("drop-order", filename, event.line,
                                  f"DROP COLUMN {', '.join(n for n, _ in dropped.values())} comes before the DROP "
                                  f"{later.key[0].upper()} {later.obj.name} at line {later.line} on the same table: "
                                  "drop indexes and constraints before their columns")


# --- entry points ------------------------------------------------------------------------------

def check_script(text: str, filename: str, schema: Schema | None = None) -> list[Finding]:
    """Findings of one script, sorted by line.

    ``schema`` holds what earlier scripts created (see check_scripts); it is updated in place.
    """
    schema = Schema() if schema is None else schema
    try:
        batches = split_batches(text)
    except GoCountError as error:
        return [Finding("parse", filename, error.line, error.args[0])]
    findings: list[Finding] = []
    events: list[_Event] = []
    for batch in batches:
        statements = _parse(batch, filename, findings)
        for statement in statements:
            findings += _check_named_defaults(statement, batch, filename)
            findings += _check_merges(statement, batch, filename)
            events += _events(statement, batch)
        findings += _check_go_before_use(statements, batch, filename)
    findings += _replay(events, schema, filename)
    return sorted(findings, key=lambda f: (f.line, f.rule))


def check_scripts(files: dict[str, str]) -> list[Finding]:
    """Check an ordered migration set as one sequence: each script sees what the earlier ones created and dropped."""
    schema = Schema()
    return [finding for name, text in files.items() for finding in check_script(text, name, schema)]


_FILE = re.compile(r"^(\d+)_.+\.(up|down)\.sql$")


def check_directory(path: str | Path) -> list[Finding]:
    """Check migrations/<dialect>/: the .up.sql files in version order, then each .down.sql against
    the schema the up scripts built up to and including its own version."""
    folder = Path(path)
    scripts = sorted((int(m[1]), m[2], p) for p in folder.iterdir() if (m := _FILE.match(p.name)))
    schema, after_up = Schema(), {}
    findings: list[Finding] = []
    for version, _, file in (s for s in scripts if s[1] == "up"):
        findings += check_script(file.read_text(encoding="utf-8-sig"), str(file), schema)
        after_up[version] = schema.copy()
    for version, _, file in (s for s in scripts if s[1] == "down"):
        before = [v for v in after_up if v <= version]
        context = after_up[max(before)].copy() if before else Schema()
        findings += check_script(file.read_text(encoding="utf-8-sig"), str(file), context)
    return findings
