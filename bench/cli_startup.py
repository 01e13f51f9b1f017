"""Wall time of `botctl --help` and `botctl migrate --help` against a bare one-command Typer app.

    python bench/cli_startup.py [--runs 15]

Same interpreter, interleaved runs, median of each; target ratio <= 1.5x. All run from
compiled bytecode, as after `pip install botctl` (pip compiles what it installs): the children
get a private PYTHONPYCACHEPREFIX that the unmeasured warm-up run fills, so a checkout run with
PYTHONDONTWRITEBYTECODE (as on CI machines) does not compile botctl's sources each time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BARE = '''import typer
app = typer.Typer()
@app.command()
def hello(name: str = "x") -> None:
    """Say hello."""
    print(name)
if __name__ == "__main__":
    app()
'''


def wall(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=ROOT, env=env)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bare = os.path.join(tmp, "bare.py")
        with open(bare, "w") as fh:
            fh.write(BARE)
        commands = {
            "bare typer --help": [sys.executable, bare, "--help"],
            "botctl --help": [sys.executable, "-m", "cli.app", "--help"],
            "botctl migrate --help": [sys.executable, "-m", "cli.app", "migrate", "--help"],
        }
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
        for cmd in commands.values():  # warm the file cache, write the bytecode
            wall(cmd, env)
        times: dict[str, list[float]] = {k: [] for k in commands}
        for _ in range(args.runs):
            for name, cmd in commands.items():
                times[name].append(wall(cmd, env))
    base = statistics.median(times["bare typer --help"])
    print(f"{'command':<24}{'median ms':>10}{'ratio':>8}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<24}{median * 1000:>10.1f}{median / base:>8.2f}")
    worst = max(statistics.median(v) for v in times.values()) / base
    print(f"worst ratio {worst:.2f} (target <= 1.5): {'met' if worst <= 1.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
