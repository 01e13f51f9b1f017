"""A bench's server in a child process: start it, wait until it answers, stop it."""

from __future__ import annotations

import subprocess
import tempfile
import time
from contextlib import contextmanager
from typing import Any, Iterator


def spawn(cmd: list[str], env: dict[str, str], cwd: str, **options: Any) -> subprocess.Popen:
    """Start a bench server with its stderr in an unnamed temporary file, not a pipe: a pipe
    nobody reads fills up (64 KiB of uvicorn's "Exceeded concurrency limit." under the open
    model's overload) and then blocks the server's event loop on its next write."""
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=log, **options)
    proc.stderr_log = log  # type: ignore[attr-defined]
    return proc


def stderr_tail(proc: subprocess.Popen) -> str:
    log = proc.stderr_log  # type: ignore[attr-defined]
    log.seek(0)
    return log.read().decode(errors="replace")[-2000:]


@contextmanager
def running(cmd: list[str], env: dict[str, str], cwd: str, ready_url: str, timeout_s: float = 30) -> Iterator[None]:
    """Run ``cmd``; yield once ``ready_url`` answers any HTTP status; terminate it afterwards."""
    import httpx

    proc = spawn(cmd, env, cwd)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(stderr_tail(proc))
            try:
                httpx.get(ready_url, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the bench server did not come up") from None
                time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
