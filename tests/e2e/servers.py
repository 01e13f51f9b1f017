"""Real processes for end-to-end tests: `botctl serve` and a private PostgreSQL instance."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bot_core.webhook import meta
from tests.conftest import ROOT
from tests.support.fake_http import free_port

APP_SECRET = "e2e-app-secret-7f3a9c"
VERIFY_TOKEN = "e2e-verify-token"
PG_BIN = Path("/usr/lib/postgresql") / (sorted(os.listdir("/usr/lib/postgresql"))[-1]
                                        if os.path.isdir("/usr/lib/postgresql") else "none") / "bin"


class BotServer:
    """`python -m cli.app serve` in a subprocess, on loopback."""

    def __init__(self, db_url: str, workdir: Path, workers: int = 1, mode: str = "inline",
                 env: dict[str, str] | None = None):
        self.db_url, self.workdir, self.workers, self.mode = db_url, Path(workdir), workers, mode
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.telemetry = self.workdir / "telemetry.jsonl"
        self.log = self.workdir / f"serve-{self.port}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BOTCTL_")}
        self.env.update({"BOTCTL_APP_SECRET": APP_SECRET, "BOTCTL_VERIFY_TOKEN": VERIFY_TOKEN,
                         "BOTCTL_TELEMETRY_FILE": str(self.telemetry), "PYTHONPATH": str(ROOT)})
        self.env.update(env or {})
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "BotServer":
        self._log_fh = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.app", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", str(self.workers), "--mode", self.mode, "--db", self.db_url],
            cwd=self.workdir, env=self.env, stdout=self._log_fh, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code in (200, 503):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("serve did not come up: " + self.log.read_text()[-2000:])

    def worker_pids(self) -> list[int]:
        """uvicorn's worker processes (children of the serve process)."""
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if getattr(self, "_log_fh", None):
            self._log_fh.close()

    def __enter__(self) -> "BotServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


async def deliver(client: httpx.AsyncClient, url: str, payload: dict) -> int:
    body, headers = meta.signed_body(payload, APP_SECRET)
    try:
        response = await client.post(url + "/webhook", content=body, headers=headers)
        return response.status_code
    except httpx.HTTPError:
        return 599


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (initdb in a temp folder, its own port) a test may stop."""

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="botctl-pg-"))
        self.data = self.dir / "data"

    @staticmethod
    def unavailable_reason() -> str | None:
        if not (PG_BIN / "initdb").exists():
            return f"PostgreSQL server binaries not found at {PG_BIN}"
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            return "running as root without runuser to drop to the postgres user"
        return None

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def init(self) -> "PrivatePostgres":
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        return self

    def start(self, *settings: str) -> None:
        """Start it; ``settings`` are extra ``name=value`` server settings (bench/stages.py)."""
        extra = "".join(f" -c {s}" for s in settings)
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off{extra}", "start")

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def destroy(self) -> None:
        try:
            self.stop()
        except Exception:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
