"""A uvicorn server in a background thread of this process, on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time

from bot_core.asgi import create_app_from_config
from bot_core.config import Config


class LocalServer:
    """``botctl chat``'s own server: sends its replies to the chat's Graph API stand-in at *whatsapp_url*."""

    def __init__(self, config: Config, whatsapp_url: str):
        self.config = config.with_overrides(whatsapp__base_url=whatsapp_url)
        self.server = None
        self.thread: threading.Thread | None = None

    def start(self) -> str:
        import uvicorn

        from cli.serve_app import pending_migrations_probe

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        app = create_app_from_config(self.config, "127.0.0.1", pending_migrations_probe(self.config))
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                                    access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the local server did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{port}/webhook"

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
