"""`make reliability`: run every scenario and print the table (exit 1 if any lost or duplicated)."""

import sys

from tests.reliability.harness import markdown, run_all

rows = run_all(sys.argv[1:] or None)
print(markdown(rows))
for row in rows:
    if row.notes:
        print(f"- {row.scenario}: " + "; ".join(row.notes))
sys.exit(0 if all(r.ok for r in rows) else 1)
