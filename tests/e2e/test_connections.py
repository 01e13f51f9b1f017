"""Connection hygiene of a real `botctl serve` against sockets that lie or stall (docs/security.md).

The limits are set low through the environment (1 s) so that each stall is caught quickly; a
generous socket timeout only turns a server that never closes into a failure instead of a hang.
"""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from bot_core.storage import open_database
from bot_core.webhook import meta
from migrations.runner import MigrationRunner
from tests.e2e.servers import APP_SECRET, BotServer

pytestmark = [pytest.mark.e2e]
GIVE_UP_S = 15  # far past the 1 s limits: reaching it means the server never closed


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("connections")
    url = f"sqlite:///{workdir / 'conn.db'}"
    MigrationRunner(open_database(url)).up()
    with BotServer(url, workdir, env={"BOTCTL_HEADER_TIMEOUT_SECONDS": "1", "BOTCTL_BODY_TIMEOUT_SECONDS": "1",
                                      "BOTCTL_MAX_HEADER_BYTES": "8192", "BOTCTL_MAX_CONNECTIONS": "20"}) as srv:
        yield srv


def connect(server: BotServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=GIVE_UP_S)
    return sock


def closed_by_server(sock: socket.socket) -> bytes:
    """Read until the server closes; what it said before closing."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except socket.timeout:
        pytest.fail(f"the server kept the connection open for {GIVE_UP_S}s")
    return received


def test_a_connection_that_sends_nothing_is_closed(server):
    with connect(server) as sock:
        assert closed_by_server(sock) == b""


def test_headers_trickled_byte_by_byte_are_cut_off(server):
    with connect(server) as sock:
        sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        try:
            while time.monotonic() - started < GIVE_UP_S:
                sock.sendall(b"X")  # one more byte of a header line that never ends
                time.sleep(0.2)
            pytest.fail(f"the server still read trickled headers after {GIVE_UP_S}s")
        except (BrokenPipeError, ConnectionResetError):
            pass


def test_oversized_headers_close_the_connection(server):
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 64 * 1024 + b"\r\n\r\n")
        assert b"200 OK" not in closed_by_server(sock)


def test_a_body_shorter_than_its_content_length_is_a_408(server):
    body, headers = meta.signed_body(meta.envelope([meta.text_message("5215557200001", "hola")]), APP_SECRET)
    with connect(server) as sock:
        sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"X-Hub-Signature-256: " + headers["X-Hub-Signature-256"].encode() +
                     b"\r\nContent-Length: " + str(len(body) + 1000).encode() + b"\r\n\r\n" + body)
        answer = closed_by_server(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_an_unsigned_post_is_refused_before_its_body_is_sent(server):
    with connect(server) as sock:
        sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 3000000\r\n\r\n")  # and not one byte of the 3 MB
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


def test_no_redirect_reflects_a_forged_host(server):
    for method in ("POST", "GET"):
        response = httpx.request(method, server.url + "/webhook/", headers={"Host": "evil.example"},
                                 content=b"{}", follow_redirects=False, timeout=10)
        assert not 300 <= response.status_code < 400 and "location" not in response.headers
        assert response.status_code == 404


def test_idle_sockets_do_not_lock_out_a_real_delivery(server):
    idle = [connect(server) for _ in range(30)]  # more than max_connections
    try:
        time.sleep(2.5)  # past the header timeout: the server dropped them
        body, headers = meta.signed_body(meta.envelope([meta.text_message("5215557200002", "hola")]), APP_SECRET)
        response = httpx.post(server.url + "/webhook", content=body, headers=headers, timeout=10)
        assert response.status_code == 200
        for sock in idle:
            sock.settimeout(1)
            assert closed_by_server(sock) == b""
    finally:
        for sock in idle:
            sock.close()
