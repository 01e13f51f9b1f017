"""Webhook latency with an AI provider that hangs: rules-only baseline vs CLOSED vs OPEN breaker.

    python bench/ai_degraded.py [--messages 500] [--deadline-ms 500]

One run, same machine, same load generator (ops.loadtest, closed model):
  * rules-only: p99 of N messages (the baseline);
  * AI provider hanging, breaker CLOSED: every call waits its deadline; p99 must be
    <= deadline + 50 ms (detect and extract run concurrently, so one deadline per message);
  * breaker OPEN: calls fail fast; p99 must be within 2x the rules-only p99.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.webhook import SECRET, free_port, start, stop, wait_up, env_for  # noqa: E402
from bot_core.storage import open_database  # noqa: E402
from migrations.runner import MigrationRunner  # noqa: E402
from ops.loadtest.runner import saturate  # noqa: E402
from ops.loadtest.traffic import TrafficSpec, build_plan  # noqa: E402
from tests.support.fake_http import FakeAI  # noqa: E402


def deliveries(n: int):
    spec = TrafficSpec(rate=n, duration_s=1.0, gap_s=10.0, run_id=uuid.uuid4().hex[:8].upper())
    return [d for d in build_plan(spec, SECRET) if d.step == 0][:n]


def serve(db_url: str, workdir: str, extra: dict[str, str]):
    MigrationRunner(open_database(db_url)).up()
    port = free_port()
    env = env_for(db_url, workdir)
    env.update(extra)
    proc = start([sys.executable, "-m", "cli.app", "serve", "--port", str(port), "--db", db_url, "-q"], env, workdir)
    url = f"http://127.0.0.1:{port}/webhook"
    wait_up(url, proc)
    return proc, url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--deadline-ms", type=int, default=500)
    args = parser.parse_args()
    failures = 20  # the breaker opens after 10 messages (detect + extract fail for each)
    with tempfile.TemporaryDirectory() as tmp, FakeAI("hang") as fake:
        proc, url = serve(f"sqlite:///{tmp}/rules.db", tmp, {})
        try:
            rules = asyncio.run(saturate(url, deliveries(args.messages), concurrency=4))
        finally:
            stop(proc)
        ai_env = {"BOTCTL_AI_PROVIDER": "openai", "BOTCTL_AI_BASE_URL": fake.url + "/v1", "BOTCTL_AI_MODEL": "m",
                  "BOTCTL_AI_API_KEY": "sk-bench", "BOTCTL_AI_DEADLINE_DETECT_MS": str(args.deadline_ms),
                  "BOTCTL_AI_DEADLINE_EXTRACT_MS": str(args.deadline_ms),
                  "BOTCTL_AI_BREAKER_FAILURES": str(failures), "BOTCTL_AI_BREAKER_RESET_SECONDS": "600"}
        proc, url = serve(f"sqlite:///{tmp}/ai.db", tmp, ai_env)
        try:
            closed = asyncio.run(saturate(url, deliveries(failures // 2 - 1), concurrency=1))
            asyncio.run(saturate(url, deliveries(2), concurrency=1))  # these open the breaker
            opened = asyncio.run(saturate(url, deliveries(args.messages), concurrency=4))
        finally:
            stop(proc)
    base = rules["latency_ms"]["p99"]
    print(f"{'phase':<34}{'messages':>9}{'p50 ms':>9}{'p99 ms':>9}{'x rules p99':>13}")
    for name, r in (("rules only (baseline)", rules), ("AI hanging, breaker CLOSED", closed),
                    ("AI hanging, breaker OPEN", opened)):
        lat = r["latency_ms"]
        print(f"{name:<34}{r['ok']:>9}{lat['p50']:>9.2f}{lat['p99']:>9.2f}{lat['p99'] / base:>13.2f}")
    limit = args.deadline_ms + 50
    print(f"CLOSED p99 {closed['latency_ms']['p99']:.1f} ms <= deadline + 50 = {limit} ms: "
          f"{'met' if closed['latency_ms']['p99'] <= limit else 'NOT met'}")
    ratio = opened["latency_ms"]["p99"] / base
    print(f"OPEN p99 / rules p99 = {ratio:.2f} (target <= 2): {'met' if ratio <= 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
