"""rollback-rehearsed passes only on a rehearsal on the release's target dialect (checklist.yaml)."""

from __future__ import annotations

import subprocess
import sys

from ops.checklist import Context, evaluate, load_checklist
from tests.conftest import ROOT
from tests.unit.test_checklist import NOW, db_url, edit, ev, patch_json, run  # noqa: F401 - fixtures

__all__ = ["db_url", "ev"]


def rehearsal(ev_dir, db, **context):
    results = evaluate(load_checklist(ev_dir / "checklist.yaml"), Context(now=NOW, db=db, **context))
    return {r.id: r for r in results}["rollback-rehearsed"]


def test_a_rehearsal_on_another_dialect_fails_and_says_what_it_got_and_needs(ev, db_url):
    edit(ev, "rollback-rehearsed", evidence={"dialect": "mssql"})
    patch_json(ev, "rehearsal.json", server_version="3.45.1")
    result = rehearsal(ev, db_url)
    assert result.status == "fail"
    assert "rehearsed on sqlite 3.45.1" in result.detail and "this release targets mssql" in result.detail
    results, outcome = run(ev, db_url)
    assert outcome != "ready"


def test_the_target_dialect_passes_and_a_declared_stand_in_passes_saying_so(ev, db_url):
    edit(ev, "rollback-rehearsed", evidence={"dialect": "sqlite"})
    assert rehearsal(ev, db_url).status == "pass"
    edit(ev, "rollback-rehearsed", evidence={"dialect": "mssql"})
    stand_in = rehearsal(ev, db_url, rehearsal_dialect="sqlite")
    assert stand_in.status == "pass" and "NOT the release's target mssql" in stand_in.detail
    # The stand-in must be what was rehearsed: naming another one does not help.
    assert rehearsal(ev, db_url, rehearsal_dialect="postgresql").status == "fail"


def test_the_repository_checklist_targets_sql_server():
    item = next(i for i in load_checklist(ROOT / "checklist.yaml").items if i.id == "rollback-rehearsed")
    assert item.evidence["dialect"] == "mssql"


def test_a_bad_rehearsal_dialect_flag_is_one_line_exit_2(tmp_path):
    out = subprocess.run([sys.executable, "-m", "cli.app", "checklist", "--rehearsal-dialect", "oracle"],
                         cwd=tmp_path, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert out.returncode == 2 and "--rehearsal-dialect" in out.stderr and "Traceback" not in out.stderr
