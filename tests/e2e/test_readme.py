"""The README's commands, extracted from its fenced ``sh``/``console`` blocks and run exactly as written.

They run in a scratch copy of the repository's top-level files whose ``.venv`` is this test run's
environment (its ``bin``), installed already: the stamp makes ``make run`` skip the install, as it
does on a second run. ``make run`` serves in the background on the ports the README names; the
``console`` transcript of ``botctl chat`` is typed into it and the bot's lines are compared (ticket
numbers aside). ``make test`` is the only command not run here: it is the suite running this test.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NOT_RUN = {"make test": "it is the test suite that runs this test"}
TICKET = re.compile(r"REF-\d{8}-[0-9A-F]{8}")


@dataclass
class Command:
    line: str
    typed: list[str] = field(default_factory=list)  # console: the lines the user types ("tú: …")
    shown: list[str] = field(default_factory=list)  # console: the bot's lines of the transcript


def readme_commands(text: str) -> list[Command]:
    commands: list[Command] = []
    for lang, body in re.findall(r"^```(\w+)\n(.*?)^```", text, re.M | re.S):
        if lang == "sh":
            commands += [Command(line) for line in body.splitlines() if line.strip() and not line.startswith("#")]
        elif lang == "console":
            for line in body.splitlines():
                if line.startswith("$ "):
                    commands.append(Command(line[2:]))
                elif line.startswith("tú: "):
                    commands[-1].typed.append(line[len("tú: "):])
                elif line.strip():
                    commands[-1].shown.append(line.removeprefix("bot: ").strip())
    return commands


def _free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_the_readme_names_what_this_test_runs():
    lines = [c.line for c in readme_commands((ROOT / "README.md").read_text(encoding="utf-8"))]
    assert lines[0] == "make run" and "make test" in lines
    assert any(line.startswith(".venv/bin/botctl chat --url") for line in lines)
    assert any(line.startswith(".venv/bin/botctl loadtest") for line in lines)


def test_every_readme_command_runs_as_written(tmp_path):
    for port in (8000, 8001):
        if not _free(port):
            pytest.skip(f"port {port}, which the README's commands use, is taken on this machine")
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    work = tmp_path / "repo"
    work.mkdir()
    for name in ("Makefile", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, work / name)
    (work / ".venv").mkdir()
    (work / ".venv" / "bin").symlink_to(Path(sys.executable).parent)
    (work / ".venv" / ".installed").touch()  # newer than pyproject.toml: `make run` installs nothing
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTCTL_")}
    commands = [c for c in readme_commands((work / "README.md").read_text(encoding="utf-8"))
                if c.line not in NOT_RUN]
    assert commands[0].line == "make run"
    server = subprocess.Popen(["bash", "-c", commands[0].line], cwd=work, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get("http://127.0.0.1:8000/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`make run` did not serve: {server.stdout.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.2)
        for command in commands[1:]:
            r = subprocess.run(["bash", "-c", command.line], cwd=work, env=env, capture_output=True, text=True,
                               input="".join(f"{t}\n" for t in command.typed), timeout=120)
            assert r.returncode == 0, (command.line, r.stdout, r.stderr)
            assert "Traceback" not in r.stderr, (command.line, r.stderr)
            shown = TICKET.sub("REF-…", r.stdout)
            for line in command.shown:  # the transcript's bot lines, in order
                position = shown.find(TICKET.sub("REF-…", line))
                assert position >= 0, (command.line, line, r.stdout)
                shown = shown[position:]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
