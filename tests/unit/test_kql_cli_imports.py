"""`botctl --help` and `botctl metrics --help` stay light: neither azure nor duckdb is imported."""

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
from cli.app import main
code = main(sys.argv[1:])
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('azure', 'duckdb', 'duckdb_kql'))
print(json.dumps({'code': code, 'heavy': heavy}), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--help"], ["metrics", "--help"], ["alerts", "--help"],
                                  ["alerts", "export", "--help"], ["metrics", "--list"]])
def test_help_imports_neither_azure_nor_duckdb(args):
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}
    assert "Usage" in proc.stdout or "concurrency_retries" in proc.stdout


def test_the_probe_would_see_them():
    proc = subprocess.run([sys.executable, "-c", "import kql.local, duckdb_kql, sys; "
                           "print('duckdb_kql' in sys.modules)"], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "True"
