"""`make mutation`: mutation testing (mutmut 3) of the checkers and the core invariants.

Each module is mutated in its own scratch copy of the working tree, and each mutant is run
against that module's own fast tests only (the table below), never the whole suite. Prints,
per module, the mutants killed out of those a test reaches, and writes the survivors of each
module to reports/mutation/<module>.txt for docs/testing.md. CPU-heavy: not part of CI.

    make mutation                          # every module
    make mutation MODULES="ops/checklist.py bot_core/breaker.py"
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES: dict[str, list[str]] = {
    "ops/loadtest/verify.py": ["tests/integration/test_verify_rules.py"],
    "ops/checklist.py": ["tests/unit/test_checklist.py", "tests/unit/test_checklist_evidence.py",
                         "tests/unit/test_checklist_dialect.py"],
    "migrations/introspect.py": ["tests/integration/test_introspect_diff.py"],
    "bot_core/inbox.py": ["tests/integration/test_inbox_sessions.py", "tests/integration/test_processing.py"],
    "bot_core/sessions.py": ["tests/integration/test_inbox_sessions.py", "tests/integration/test_processing.py"],
    "bot_core/outbox.py": ["tests/integration/test_graph_sender.py", "tests/integration/test_outbox.py"],
    "bot_core/breaker.py": ["tests/unit/test_circuit_breaker.py", "tests/unit/test_call_policy.py"],
    "bot_core/webhook/signature.py": ["tests/unit/test_webhook_payload.py"],
}
IGNORE = shutil.ignore_patterns(".git", ".venv", "node_modules", "reports", "mutants", "__pycache__",
                                ".hypothesis", ".pytest_cache", "*.egg-info")
CONFIG = """[mutmut]
source_paths = {module}
pytest_add_cli_args_test_selection = {tests}
pytest_add_cli_args = -p no:randomly -p no:cacheprovider -q
also_copy = tests/
    bot_core/
    migrations/
    cli/
    kql/
    ops/
    .ci/
    docs/
    checklist.yaml
    Makefile
    README.md
    pyproject.toml
"""


class MutationRunFailed(Exception):
    pass


def mutate(module: str, tests: list[str], children: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="botctl-mutation-"))
    try:
        shutil.copytree(ROOT, work / "src", ignore=IGNORE)
        src = work / "src"
        (src / "setup.cfg").write_text(CONFIG.format(module=module, tests="\n    ".join(tests)))
        mutmut = [sys.executable, "-m", "mutmut"]
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        log = ROOT / "reports" / "mutation" / (module.replace("/", "_") + ".log")
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as out:
            subprocess.run([*mutmut, "run", "--max-children", str(children)], cwd=src, env=env,
                           stdout=out, stderr=subprocess.STDOUT, check=False)
        subprocess.run([*mutmut, "export-cicd-stats"], cwd=src, env=env, capture_output=True, check=True)
        stats = json.loads((src / "mutants" / "mutmut-cicd-stats.json").read_text())
        if stats["total"] and not stats["killed"] + stats["survived"] + stats["timeout"]:
            # mutmut stops before the first mutant when the clean test run fails: not a 0 % score.
            raise MutationRunFailed(f"{module}: mutmut tested no mutant; its output is in {log}")
        listing = subprocess.run([*mutmut, "results"], cwd=src, env=env, capture_output=True, text=True).stdout
        survivors = [line.strip() for line in listing.splitlines() if line.strip().endswith(("survived", "timeout"))]
        diffs = []
        for line in survivors:
            name = line.split(":")[0]
            shown = subprocess.run([*mutmut, "show", name], cwd=src, env=env, capture_output=True, text=True)
            diffs.append(f"## {line}\n{shown.stdout}")
        out = ROOT / "reports" / "mutation"
        out.mkdir(parents=True, exist_ok=True)
        (out / (module.replace("/", "_") + ".txt")).write_text("\n".join(diffs) + "\n")
        return stats
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> int:
    chosen = argv or list(MODULES)
    unknown = [m for m in chosen if m not in MODULES]
    if unknown:
        print(f"mutation: unknown module(s) {', '.join(unknown)} (known: {', '.join(MODULES)})", file=sys.stderr)
        return 2
    children = int(os.environ.get("MUTATION_CHILDREN", "2"))
    print(f"{'module':34} {'mutants':>7} {'reached':>7} {'killed':>6} {'survived':>8} {'timeout':>7} {'killed %':>8}")
    for module in chosen:
        try:
            s = mutate(module, MODULES[module], children)
        except MutationRunFailed as exc:
            print(f"mutation: {exc}", file=sys.stderr)
            return 1
        reached = s["total"] - s["no_tests"] - s["skipped"]
        share = 100.0 * s["killed"] / reached if reached else 0.0
        print(f"{module:34} {s['total']:7} {reached:7} {s['killed']:6} {s['survived']:8} {s['timeout']:7} "
              f"{share:7.1f}%", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
