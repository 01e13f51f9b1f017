"""The command tree reads well: help on every option, one meaning per short flag, summaries that
say what a command does first, on one line (the top-level help shows that line)."""

from __future__ import annotations

import typer

from cli.app import app


def _commands():
    """(path, click command) for every command and group under botctl."""
    root = typer.main.get_command(app)
    stack = [("botctl", root)]
    while stack:
        path, command = stack.pop()
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            stack.append((f"{path} {name}", sub))


def _options(command):
    return [p for p in command.params if p.param_type_name == "option"]


def test_every_option_and_argument_has_help():
    missing = [f"{path} {p.opts[0]}" for path, command in _commands() for p in command.params
               if not (getattr(p, "help", None) or "").strip()]
    assert missing == []


def test_a_short_flag_means_the_same_long_option_everywhere():
    meaning: dict[str, set[str]] = {}
    for _, command in _commands():
        for p in _options(command):
            longs = [o for o in p.opts if o.startswith("--")]
            for short in (o for o in p.opts + p.secondary_opts if len(o) == 2 and o[0] == "-"):
                meaning.setdefault(short, set()).update(longs)
    assert {s: sorted(l) for s, l in meaning.items() if len(l) > 1} == {}
    assert meaning["-o"] == {"--output"} and meaning["-q"] == {"--quiet"} and meaning["-f"] == {"--file"}


def test_each_summary_says_what_the_command_does_on_one_line():
    for path, command in _commands():
        if path == "botctl":
            continue
        first = (command.help or "").strip().split("\n\n")[0]
        assert first, path
        assert "\n" not in first, f"{path}: the summary the top-level help shows is cut: {first!r}"
        assert first.endswith((".", ")")), f"{path}: {first!r}"
        assert not first.lower().startswith("exit"), f"{path} opens with exit codes: {first!r}"


def test_every_closed_choice_is_checked_in_one_line():
    """An option listing its values (metavar a|b) refuses another value with one line naming them."""
    from tests.conftest import botctl

    checked = 0
    for path, command in _commands():
        for p in _options(command):
            if not p.metavar or "|" not in p.metavar or getattr(command, "commands", None):
                continue
            long = next(o for o in p.opts if o.startswith("--"))
            required = [a for q in _options(command) if q.required for a in (q.opts[0], "http://127.0.0.1:1/webhook")]
            args = path.split()[1:] + required + [long, "not-a-choice"]
            r = botctl(*args)
            assert r.returncode == 2, (args, r.stderr)
            assert r.stderr.strip().splitlines() == [
                f"botctl: error: {long} must be one of {', '.join(p.metavar.split('|'))}, not 'not-a-choice'"], args
            checked += 1
    assert checked >= 12
