"""Every `botctl` command in docs/runbook.md runs, in the runbook's order, with the runbook's variables.

The commands are read from the page's code blocks (nothing listed here), their shell variables
set to local stand-ins: Azure SQL -> a SQLite file at the previous release's schema, the Function
App -> `botctl serve` on loopback (started where the runbook publishes), Application Insights ->
the real LogsQueryClient answered by a recorded response (tests/fixtures/appinsights). A command
must exit 0, or 1 where the runbook's own comment on that line says "exit 1".
"""

from __future__ import annotations

import os
import re
import shlex

import pytest

from bot_core.demo import seed_demo_equipment
from bot_core.storage import open_database
from cli.app import main
from migrations.runner import MigrationRunner
from tests.conftest import ROOT
from tests.e2e.servers import APP_SECRET, BotServer

RUNBOOK = ROOT / "docs" / "runbook.md"
SMOKE = "5210000000077"


def runbook_commands() -> list[tuple[str, int]]:
    """(command line, expected exit code) for each botctl line of the page's code blocks."""
    text = RUNBOOK.read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            command, _, comment = line.partition("  #")
            if command.strip().startswith("botctl "):
                out.append((command.strip(), 1 if comment.strip().startswith("exit 1") else 0))
    return out


def test_the_runbook_has_the_deploy_and_rollback_commands():
    commands = [c for c, _ in runbook_commands()]
    text = RUNBOOK.read_text(encoding="utf-8")
    for needed in ("botctl migrate up", "botctl smoke", "botctl metrics --check", "botctl migrate down"):
        assert any(c.startswith(needed) for c in commands), needed
    assert "az functionapp restart" in text and "func azure functionapp publish" in text
    order = [next(i for i, c in enumerate(commands) if c.startswith(n))
             for n in ("botctl migrate up", "botctl smoke", "botctl metrics", "botctl migrate down")]
    assert order == sorted(order)  # migrate, smoke, watch, then the rollback


def test_every_botctl_command_of_the_runbook_runs(tmp_path, monkeypatch, capsys):
    from kql import appinsights
    from tests.unit.test_kql_appinsights import APP, client_for

    db_url = f"sqlite:///{tmp_path / 'azure-sql.db'}"
    db = open_database(db_url)
    MigrationRunner(db).up(to=3)  # the previous release's schema
    seed_demo_equipment(db)
    variables = {"BOTCTL_DB": db_url, "BOTCTL_APP_SECRET": APP_SECRET, "BOTCTL_SMOKE_PHONE": SMOKE,
                 "APPINSIGHTS_ID": APP.id, "PREVIOUS": "003",
                 "BOTCTL_TELEMETRY_FILE": str(tmp_path / "cli-telemetry.jsonl")}
    for key in [k for k in os.environ if k.startswith("BOTCTL_")]:
        monkeypatch.delenv(key)
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # an operator in another directory, no botctl.yaml
    client, adapter = client_for("empty.json")
    adapter.responses *= 50  # one recorded answer (no rows) for every query of every watch
    monkeypatch.setattr(appinsights, "make_client", lambda credential=None, **options: client)

    server = None
    ran = []
    try:
        for line, expected in runbook_commands():
            if line.startswith("botctl smoke") and server is None:  # the runbook published the app
                server = BotServer(db_url, tmp_path, env={"BOTCTL_SMOKE_PHONE": SMOKE}).start()
                monkeypatch.setenv("WEBHOOK_URL", server.url + "/webhook")
            args = [os.path.expandvars(token) for token in shlex.split(line)][1:]
            code = main(args)
            out, err = capsys.readouterr()
            assert "$" not in " ".join(args), f"an unset variable in: {line}"
            assert code == expected, f"{line}: exit {code}, expected {expected}\n{err[-2000:]}"
            assert "Traceback" not in err
            ran.append(line)
    finally:
        if server is not None:
            server.stop()
    assert len(ran) == len(runbook_commands()) >= 9
    assert [s.state for s in MigrationRunner(db).status()][-1] == "pending"  # rolled back to 003


@pytest.fixture(autouse=True)
def _no_stray_config(monkeypatch):
    monkeypatch.delenv("BOTCTL_CONFIG", raising=False)
