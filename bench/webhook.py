"""Webhook throughput and latency: the bare endpoint vs the full pipeline, one run.

    python bench/webhook.py [--quick] [--skip-postgres]

Same uvicorn settings (1 worker, uvloop + httptools when installed, no access
log) and the same load generator (ops.loadtest) for every target. Prints:
  * unique msgs/s (closed model, 64 connections) and service-time p50/p95/p99
    for the bare endpoint and the pipeline on SQLite and PostgreSQL, with the
    ratio to the bare endpoint (issue 16's targets: >= 0.20 on SQLite, >= 0.06 on
    PostgreSQL);
  * duplicate deliveries: acknowledgement p95 (target <= 5 ms);
  * 1,000 unique msgs/s open model for 60 s on the embedded default:
    p99 (target < 100 ms) and errors (target 0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager

import httpx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.child import spawn, stderr_tail  # noqa: E402
from bot_core.storage import open_database  # noqa: E402
from migrations.runner import MigrationRunner  # noqa: E402
from ops.loadtest.runner import LoadtestOptions, LoadGenerator, saturate  # noqa: E402
from ops.loadtest.thresholds import parse_threshold  # noqa: E402
from ops.loadtest.traffic import TrafficSpec, build_plan  # noqa: E402
from tests.support.fake_http import free_port  # noqa: E402

SECRET = "bench-secret"


def start(cmd: list[str], env: dict[str, str], cwd: str) -> subprocess.Popen:
    return spawn(cmd, env, cwd, start_new_session=True)


def wait_up(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(stderr_tail(proc))
        try:
            httpx.post(url, content=b"{}", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def env_for(db_url: str, workdir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTCTL_")}
    env.update({"BOTCTL_APP_SECRET": SECRET, "BOTCTL_VERIFY_TOKEN": "bench", "BOTCTL_DB": db_url,
                "BOTCTL_TELEMETRY_FILE": os.path.join(workdir, "telemetry.jsonl"), "PYTHONPATH": ROOT})
    return env


def unique_deliveries(n: int):
    spec = TrafficSpec(rate=n, duration_s=1.0, gap_s=10.0, run_id=uuid.uuid4().hex[:8].upper())
    return [d for d in build_plan(spec, SECRET) if d.step == 0][:n]


def measure_saturation(url: str, n: int) -> dict:
    deliveries = unique_deliveries(n)
    result = asyncio.run(saturate(url, deliveries, concurrency=64))
    dups = asyncio.run(saturate(url, deliveries[: min(2000, n)], concurrency=8))
    result["duplicate_ack_ms"] = dups["latency_ms"]
    return result


@contextmanager
def serving(db_url: str, workdir: str):
    """`botctl serve` on a migrated database; yields the webhook URL."""
    MigrationRunner(open_database(db_url)).up()
    port = free_port()
    proc = start([sys.executable, "-m", "cli.app", "serve", "--port", str(port), "--db", db_url, "-q"],
                 env_for(db_url, workdir), workdir)
    url = f"http://127.0.0.1:{port}/webhook"
    try:
        wait_up(url, proc)
        yield url
    finally:
        stop(proc)


def pipeline(db_url: str, workdir: str, n: int) -> dict:
    with serving(db_url, workdir) as url:
        return measure_saturation(url, n)


def open_model(db_url: str, workdir: str, rate: float, duration: float) -> dict:
    with serving(db_url, workdir) as url:
        options = LoadtestOptions(url, SECRET, TrafficSpec(rate=rate, duration_s=duration, warmup_s=2.0),
                                  thresholds=[parse_threshold("p(99)<100"), parse_threshold("errors==0")])
        return asyncio.run(LoadGenerator(options).run())


def row(name: str, r: dict, base: float) -> str:
    lat = r["latency_ms"]
    return (f"{name:<28}{r['throughput']:>10,.0f}{lat['p50']:>9.2f}{lat['p95']:>9.2f}{lat['p99']:>9.2f}"
            f"{r['throughput'] / base:>8.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer messages, 10 s open-model run")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    n = 5000 if args.quick else 30000
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        bare = start([sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--port", str(port),
                      "--log-level", "warning", "--no-access-log"], env_for("sqlite:///x", tmp), ROOT)
        try:
            wait_up(f"http://127.0.0.1:{port}/webhook", bare)
            base = measure_saturation(f"http://127.0.0.1:{port}/webhook", n)
        finally:
            stop(bare)
        results = {"bare endpoint": base}
        results["pipeline sqlite"] = pipeline(f"sqlite:///{tmp}/bench.db", tmp, n)
        if not args.skip_postgres:
            import pyodbc

            name = f"botctl_bench_{uuid.uuid4().hex[:8]}"
            admin = pyodbc.connect("DRIVER={PostgreSQL Unicode};SERVER=127.0.0.1;PORT=5432;DATABASE=postgres;"
                                   "UID=postgres;", autocommit=True)
            admin.cursor().execute(f"CREATE DATABASE {name}")
            try:
                results["pipeline postgresql"] = pipeline(f"postgresql://postgres@127.0.0.1:5432/{name}", tmp, n)
            finally:
                admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        print(f"\n{n:,} unique messages per target, closed model, 64 connections")
        print(f"{'target':<28}{'msgs/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'ratio':>8}")
        for name, r in results.items():
            print(row(name, r, base["throughput"]))
        for name, target in (("pipeline sqlite", 0.20), ("pipeline postgresql", 0.06)):
            if name in results:
                ratio = results[name]["throughput"] / base["throughput"]
                print(f"{name}/bare {ratio:.3f} (target >= {target:g}): {'met' if ratio >= target else 'NOT met'}")
        for name, r in results.items():
            if name != "bare endpoint":
                p95 = r["duplicate_ack_ms"]["p95"]
                print(f"duplicate ack p95 {name}: {p95:.2f} ms (target <= 5): {'met' if p95 <= 5 else 'NOT met'}")
        duration = 10.0 if args.quick else 60.0
        om = open_model(f"sqlite:///{tmp}/open.db", tmp, 1000.0, duration)
        lat = om["latency_ms"]
        print(f"\nopen model 1000 msgs/s for {duration:g}s on SQLite: achieved {om['rate_achieved']}/s, "
              f"p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms, errors {om['errors']}, "
              f"dropped {om['dropped']}, late {om['late']}")
        for t in om["thresholds"]:
            print(f"  {t['expression']}: {'met' if t['passed'] else 'NOT met'} (actual {t['actual']})")


if __name__ == "__main__":
    main()
