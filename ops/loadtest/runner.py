"""The open-model scheduler: fire each delivery at its due time, measure from it.

Delivery i is due at t0 + due_i. The scheduler never waits for responses: it
sleeps until the next due time and starts the request as its own task. Latency
is measured from the due time (so queueing inside the generator counts, and a
stalled server shows as latency, not as a lower rate). A send that starts more
than ``late_ms`` after its due time is counted late; one that would exceed
``max_inflight`` concurrent requests is dropped and counted.

Deliveries answered 5xx, or that time out or fail to connect, are redelivered
as Meta does: with exponential backoff and jitter, up to ``max_redeliveries``.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

from bot_core.errors import ConfigError
from ops.loadtest.http import HttpPool, TransportError
from ops.loadtest.summary import round_ms
from ops.loadtest.thresholds import Threshold
from ops.loadtest.timeline import Timeline, distribution
from ops.loadtest.traffic import Delivery, TrafficSpec, build_plan

TIMEOUT_STATUS, TRANSPORT_STATUS = 598, 599  # pseudo statuses for what never got an HTTP answer


@dataclass
class LoadtestOptions:
    url: str
    app_secret: str
    spec: TrafficSpec
    timeout_s: float = 10.0
    max_redeliveries: int = 5
    redelivery_base_s: float = 1.0
    connections: int = 256
    max_inflight: int = 5000
    late_ms: float = 10.0
    thresholds: list[Threshold] = field(default_factory=list)
    shorten: float | None = None
    progress: Callable[[str], None] | None = None


async def attempt(pool: HttpPool, path: str, d: Delivery, timeout_s: float) -> int:
    """Send one delivery once; its HTTP status, or a pseudo status when none came back."""
    d.attempts += 1
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": d.signature}
    try:
        status = (await pool.post(path, d.body, headers, timeout_s)).status
    except asyncio.TimeoutError:
        status = TIMEOUT_STATUS
    except TransportError:
        status = TRANSPORT_STATUS
    d.statuses.append(status)
    return status


def status_class(status: int) -> str:
    if status == TIMEOUT_STATUS:
        return "timeout"
    if status == TRANSPORT_STATUS:
        return "transport"
    return f"{status // 100}xx"


class Stats:
    def __init__(self) -> None:
        from hdrh.histogram import HdrHistogram

        self._new = lambda: HdrHistogram(1, 120_000_000, 3)  # microseconds, up to 2 minutes
        self.all = self._new()
        self.by_class: dict[str, Any] = {}
        self.counts: dict[int, int] = {}
        self.requests = 0
        self.late = 0
        self.dropped = 0
        self.redeliveries = 0

    def record(self, status: int, latency_s: float, measured: bool) -> None:
        if not measured:
            return
        self.requests += 1
        self.counts[status] = self.counts.get(status, 0) + 1
        micros = max(1, int(latency_s * 1_000_000))
        self.all.record_value(micros)
        cls = status_class(status)
        if cls not in self.by_class:
            self.by_class[cls] = self._new()
        self.by_class[cls].record_value(micros)


def _percentiles(hist: Any) -> dict[str, float]:
    if hist.get_total_count() == 0:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None, "avg": None}
    ms = lambda v: round_ms(v / 1000)  # noqa: E731
    return {"count": hist.get_total_count(), "p50": ms(hist.get_value_at_percentile(50)),
            "p95": ms(hist.get_value_at_percentile(95)), "p99": ms(hist.get_value_at_percentile(99)),
            "max": ms(hist.get_max_value()), "avg": ms(hist.get_mean_value())}


class LoadGenerator:
    def __init__(self, options: LoadtestOptions):
        self.o = options
        self.host, self.port, self.path, self.tls = target(options.url)
        self.stats = Stats()
        self.timeline = Timeline()
        self._t0 = 0.0
        self.plan: list[Delivery] = []
        self._inflight = 0
        self._rng = random.Random(options.spec.seed)

    async def run(self) -> dict[str, Any]:
        spec = self.o.spec
        self.plan = build_plan(spec, self.o.app_secret)
        pool = HttpPool(self.host, self.port, self.o.connections, tls=self.tls)
        if spec.burst:
            await pool.warm(min(spec.burst, self.o.connections))
        loop = asyncio.get_running_loop()
        tasks: list[asyncio.Task] = []
        t0 = self._t0 = loop.time() + 0.1
        wall0 = time.perf_counter()
        reporter = asyncio.create_task(self._report_progress(t0))
        try:
            for d in self.plan:
                due = t0 + d.due
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if self._inflight >= self.o.max_inflight:
                    self.stats.dropped += d.due >= spec.warmup_s
                    continue
                if (loop.time() - due) * 1000 > self.o.late_ms and not d.burst:
                    self.stats.late += d.due >= spec.warmup_s
                tasks.append(asyncio.create_task(self._deliver(pool, d, due)))
            send_elapsed = max(loop.time() - t0, 1e-9)
            await asyncio.gather(*tasks)
        finally:
            reporter.cancel()
            await pool.close()
        return self.summary(send_elapsed, time.perf_counter() - wall0, pool.opened)

    async def _deliver(self, pool: HttpPool, d: Delivery, due: float) -> None:
        loop = asyncio.get_running_loop()
        measured = d.due >= self.o.spec.warmup_s
        self._inflight += 1
        try:
            while True:
                started = loop.time()
                if d.sent_at is None:
                    d.sent_at = started
                status = await attempt(pool, self.path, d, self.o.timeout_s)
                self.stats.record(status, loop.time() - due, measured)
                if measured:
                    self.timeline.record(started - self._t0, loop.time() - self._t0, status_class(status),
                                         loop.time() - due)
                if 200 <= status < 300:
                    d.acked = True
                    d.acked_at = loop.time()
                    return
                if status < 500 or d.attempts > self.o.max_redeliveries:
                    return
                backoff = self.o.redelivery_base_s * 2 ** (d.attempts - 1) * (0.5 + self._rng.random())
                self.stats.redeliveries += measured
                await asyncio.sleep(backoff)
                due = loop.time()
        finally:
            self._inflight -= 1

    async def _report_progress(self, t0: float) -> None:
        if self.o.progress is None:
            return
        total = len(self.plan)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0.5)
            elapsed = loop.time() - t0
            span = self.o.spec.warmup_s + self.o.spec.duration_s
            frac = min(1.0, elapsed / span) if span else 1.0
            bar = "#" * int(frac * 30)
            p95 = _percentiles(self.stats.all)["p95"]
            self.o.progress(f"\r[{bar:<30}] {frac:4.0%} {self.stats.requests}/{total} sent, "
                            f"{self._inflight} in flight, p95 {p95 if p95 is not None else '-'} ms")

    def summary(self, send_elapsed: float, wall: float, connections: int) -> dict[str, Any]:
        spec = self.o.spec
        measured = [d for d in self.plan if d.due >= spec.warmup_s]
        errors = sum(1 for d in measured if d.attempts and not d.acked)
        http_5xx = sum(n for s, n in self.stats.counts.items() if 500 <= s < TIMEOUT_STATUS)
        transport = sum(n for s, n in self.stats.counts.items() if s in (TIMEOUT_STATUS, TRANSPORT_STATUS))
        latency = _percentiles(self.stats.all)
        metrics = {"errors": errors, "http_5xx": http_5xx, "transport_errors": transport,
                   "dropped": self.stats.dropped, "late": self.stats.late,
                   "rate": round(self.stats.requests / max(send_elapsed - spec.warmup_s, 1e-9), 2),
                   "avg": latency["avg"], "max": latency["max"]}
        percentile = lambda p: (round_ms(self.stats.all.get_value_at_percentile(p) / 1000)  # noqa: E731
                                if self.stats.all.get_total_count() else None)
        thresholds = [t.evaluate(metrics, percentile) for t in self.o.thresholds]
        burst = None
        if spec.burst:
            members = [d for d in self.plan if d.burst]
            statuses: dict[str, int] = {}
            for d in members:
                for s in d.statuses:
                    statuses[str(s)] = statuses.get(str(s), 0) + 1
            burst = {"size": spec.burst, "mode": spec.burst_mode, "statuses": statuses,
                     "acked": sum(d.acked for d in members)}
        return {
            "url": self.o.url, "run_id": spec.run_id,
            "rate_target": spec.rate, "duration_s": spec.duration_s, "warmup_s": spec.warmup_s,
            "dup_ratio": spec.dup_ratio, "shortened": self.o.shorten is not None,
            "shorten_factor": self.o.shorten,
            "rate_achieved": metrics["rate"], "requests": self.stats.requests,
            "deliveries": len(measured), "acknowledged": sum(1 for d in measured if d.acked),
            "redeliveries": self.stats.redeliveries,
            "counts_by_status": {str(k): v for k, v in sorted(self.stats.counts.items())},
            "errors": errors, "http_5xx": http_5xx, "transport_errors": transport,
            "dropped": self.stats.dropped, "late": self.stats.late,
            "latency_ms": latency,
            "latency_by_class": {cls: _percentiles(h) for cls, h in sorted(self.stats.by_class.items())},
            "thresholds": thresholds, "burst": burst, "verify": None,
            "timeline": self.timeline.to_dict(), "latency_distribution": distribution(self.stats.all),
            "connections_opened": connections, "wall_s": round(wall, 3),
        }


def target(url: str) -> tuple[str, int, str, bool]:
    """Host, port, path and whether to speak TLS, from the webhook URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--url must be an http:// or https:// URL of the webhook, not {url!r}")
    tls = parts.scheme == "https"
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError:
        raise ConfigError(f"--url has an invalid port: {url!r}") from None
    return parts.hostname, port, parts.path or "/webhook", tls


def check_reachable(url: str, timeout_s: float = 5.0) -> None:
    """One line, before any load, when nothing listens at the webhook's address."""
    import socket

    import ssl

    host, port, _, tls = target(url)
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:
        reason = "connection refused" if isinstance(exc, ConnectionRefusedError) else (exc.strerror or str(exc))
        raise ConfigError(f"no server at {url} ({reason}): start one with `botctl serve`") from None
    try:
        if tls:
            ssl.create_default_context().wrap_socket(sock, server_hostname=host).close()
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
        raise ConfigError(f"TLS with {host}:{port} failed ({reason}); a private CA can be trusted "
                          "with SSL_CERT_FILE") from None
    finally:
        sock.close()


def run_loadtest(options: LoadtestOptions) -> tuple[dict[str, Any], list[Delivery]]:
    """Run the load; returns the summary and the plan (with what each delivery got)."""
    generator = LoadGenerator(options)
    try:
        import uvloop  # a faster event loop, when installed, lets one core generate more load

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    summary = runner(generator.run())
    return summary, generator.plan


def stderr_progress(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


async def saturate(url: str, deliveries: list[Delivery], concurrency: int, timeout_s: float = 30.0
                   ) -> dict[str, Any]:
    """Closed model, for throughput benchmarks: ``concurrency`` senders back to back
    until ``deliveries`` run out. Latency here is service time, not an SLO figure."""
    parts = urlsplit(url)
    pool = HttpPool(parts.hostname or "127.0.0.1", parts.port or 80, concurrency)
    await pool.warm(concurrency)
    stats = Stats()
    queue = iter(deliveries)
    loop = asyncio.get_running_loop()

    async def sender() -> None:
        for d in queue:
            start = loop.time()
            status = await attempt(pool, parts.path or "/webhook", d, timeout_s)
            d.acked = 200 <= status < 300
            stats.record(status, loop.time() - start, True)

    t0 = loop.time()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    elapsed = loop.time() - t0
    await pool.close()
    ok = sum(n for s, n in stats.counts.items() if 200 <= s < 300)
    return {"requests": stats.requests, "ok": ok, "elapsed_s": round(elapsed, 3),
            "throughput": round(ok / elapsed, 1), "latency_ms": _percentiles(stats.all),
            "counts_by_status": {str(k): v for k, v in sorted(stats.counts.items())}}
