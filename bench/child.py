"""A bench's server in a child process: start it, wait until it answers, stop it."""

from __future__ import annotations

import subprocess
import time
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def running(cmd: list[str], env: dict[str, str], cwd: str, ready_url: str, timeout_s: float = 30) -> Iterator[None]:
    """Run ``cmd``; yield once ``ready_url`` answers any HTTP status; terminate it afterwards."""
    import httpx

    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode()[-2000:])
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
