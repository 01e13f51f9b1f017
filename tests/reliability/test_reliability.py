"""The reliability table as a test: every scenario ends with 0 lost and 0 duplicated."""

from __future__ import annotations

import pytest

from tests.conftest import PG_REASON, ROOT
from tests.e2e.servers import PrivatePostgres
from tests.reliability.harness import SCENARIOS, Suite, markdown

REASON = PrivatePostgres.unavailable_reason() or PG_REASON
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(REASON is not None, reason=str(REASON))]


@pytest.fixture(scope="module")
def suite():
    s = Suite()
    s.rows = []
    yield s
    s.close()
    if s.rows:
        (ROOT / "reports").mkdir(exist_ok=True)
        (ROOT / "reports" / "reliability.md").write_text(markdown(sorted(s.rows, key=lambda r: r.scenario)) + "\n")


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_loses_nothing_and_does_nothing_twice(suite, name):
    row = SCENARIOS[name](suite)
    suite.rows.append(row)
    assert row.requests > 0
    assert row.ok, f"{row.cells()} {row.notes}"
    if name not in ("duplicate_storm", "same_phone_storm", "sqlite_two_processes"):
        assert row.faults > 0, "the fault was not injected"
