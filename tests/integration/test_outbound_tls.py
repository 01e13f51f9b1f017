"""The trust behind the Graph API and AI clients' HTTPS (bot_core/tls.py), against fakes speaking TLS."""

from __future__ import annotations

import asyncio
import shutil
import ssl

import pytest

from bot_core.graph_sender import GraphApiSender
from bot_core.outbox import OutboundMessage
from bot_core.tls import has_hashed_certificates, outbound_tls
from tests.conftest import captured_telemetry
from tests.support.fake_http import FakeAI, FakeGraph
from tests.support.tls import hashed_ca_dir, self_signed

pytestmark = [
    pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command line names the hashed CA file"),
]
pytest.importorskip("cryptography", reason="cryptography (with the azure extra) makes the test certificate")


@pytest.fixture
def server_tls(tmp_path):
    """A fake's server context for 127.0.0.1, and the hashed CA directory that trusts it."""
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, hashed_ca_dir(cert, tmp_path / "ca")


def send_once(url: str, verify) -> tuple[str, str | None]:
    async def go():
        sender = GraphApiSender(url, "v21.0", "1234567890", "EAAG-token", captured_telemetry()[0],
                                rng=lambda: 0.5, verify=verify)
        try:
            result = await sender.send(OutboundMessage(1, "wamid.IN", 1, "5215550001111", "text", "Hola", (), 1))
            return result.state, result.wamid
        finally:
            await sender.aclose()
    return asyncio.run(go())


def test_the_system_ca_directory_is_looked_up_on_demand(server_tls):
    context, ca_dir = server_tls
    trust = outbound_tls(environ={}, ca_dir=ca_dir)
    assert isinstance(trust, ssl.SSLContext)
    assert trust.verify_mode == ssl.CERT_REQUIRED and trust.check_hostname
    assert trust.cert_store_stats()["x509_ca"] == 0  # nothing parsed up front: issuers are read per handshake
    with FakeGraph(tls=context) as graph:
        assert send_once(graph.url, trust) == ("ENVIADO", "wamid.OUT1")
        assert trust.cert_store_stats()["x509_ca"] == 1  # the handshake looked our CA up in the directory
        assert len(graph.requests) == 1


def test_a_server_the_directory_does_not_vouch_for_is_refused(server_tls, tmp_path):
    context, _ = server_tls
    (tmp_path / "other").mkdir()
    other_cert, _ = self_signed(tmp_path / "other")  # a stranger's CA, under its own hashed name
    trust = outbound_tls(environ={}, ca_dir=hashed_ca_dir(other_cert, tmp_path / "other-ca"))
    assert isinstance(trust, ssl.SSLContext)
    with FakeGraph(tls=context) as graph:
        state, wamid = send_once(graph.url, trust)
        assert graph.requests == []  # the handshake failed: nothing reached the fake
    assert (state, wamid) == ("PENDIENTE", None)  # left for a retry, never marked sent


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "SSL_CERT_DIR"])
def test_an_operators_ssl_cert_setting_wins_over_the_system_directory(server_tls, tmp_path, variable):
    """The system directory would refuse the fake; the operator's setting vouches for it."""
    context, ca_dir = server_tls
    (tmp_path / "stranger").mkdir()
    stranger = hashed_ca_dir(self_signed(tmp_path / "stranger")[0], tmp_path / "stranger-ca")
    setting = str(tmp_path / "cert.pem") if variable == "SSL_CERT_FILE" else ca_dir
    trust = outbound_tls(environ={variable: setting}, ca_dir=stranger)
    with FakeGraph(tls=context) as graph:
        assert send_once(graph.url, trust) == ("ENVIADO", "wamid.OUT1")


@pytest.mark.parametrize("variable, value, message", [
    ("SSL_CERT_FILE", "{tmp}/missing.pem", "cannot load the CA certificates in {tmp}/missing.pem"),
    ("SSL_CERT_FILE", "{tmp}/garbage.pem", "cannot load the CA certificates in {tmp}/garbage.pem"),
    ("SSL_CERT_DIR", "{tmp}/missing", "SSL_CERT_DIR {tmp}/missing is not a directory"),
])
def test_an_ssl_cert_setting_that_cannot_be_read_stops_the_app(tmp_path, variable, value, message):
    """Fail closed, in one line: never a silent fall back to another trust."""
    from bot_core.errors import ConfigError

    (tmp_path / "garbage.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError) as refused:
        outbound_tls(environ={variable: value.format(tmp=tmp_path)})
    assert str(refused.value).startswith(message.format(tmp=tmp_path)) and "\n" not in str(refused.value)


def test_without_a_hashed_directory_certifi_is_the_trust(tmp_path, server_tls):
    context, _ = server_tls
    (tmp_path / "empty").mkdir()
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "ca-certificates.crt").write_text("not a hashed name")
    (tmp_path / "dangling").mkdir()
    (tmp_path / "dangling" / "0a1b2c3d.0").symlink_to(tmp_path / "gone.pem")  # a certificate removed
    (tmp_path / "a-file").write_text("x")
    for directory in ("empty", "plain", "dangling", "missing", "a-file"):
        assert not has_hashed_certificates(str(tmp_path / directory)), directory
    trust = outbound_tls(environ={}, ca_dir=str(tmp_path / "empty"))
    assert trust.cert_store_stats()["x509_ca"] > 100  # certifi's bundle, parsed
    assert trust.verify_mode == ssl.CERT_REQUIRED and trust.check_hostname
    with FakeGraph(tls=context) as graph:  # and it does not know the test's own CA
        assert send_once(graph.url, trust) == ("PENDIENTE", None)
    assert isinstance(outbound_tls(environ={}, ca_dir=""), ssl.SSLContext)


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_the_ai_providers_built_from_settings_use_the_trust_given(server_tls, provider):
    from bot_core.ai_providers import build_intent_service
    from bot_core.config import load_config

    context, ca_dir = server_tls
    trust = outbound_tls(environ={}, ca_dir=ca_dir)

    async def go(fake):
        config = load_config(None, env={"BOTCTL_AI_PROVIDER": provider, "BOTCTL_AI_MODEL": "m",
                                        "BOTCTL_AI_API_KEY": "k", "BOTCTL_AI_BASE_URL": fake.url})
        service = build_intent_service(config, captured_telemetry()[0], trust)
        try:
            return await service.client.complete_json("system", "hola")
        finally:
            await service.aclose()
    with FakeAI(tls=context) as fake:
        assert asyncio.run(go(fake))["intent"] == "REPORTE_REFRIGERADOR"


@pytest.mark.parametrize("route", ["system directory", "SSL_CERT_DIR", "SSL_CERT_FILE"])
def test_the_app_factory_sends_through_the_trust_it_resolves(server_tls, tmp_path, monkeypatch, route):
    """create_app_from_config (serve and Functions) builds the sender on outbound_tls(), and a
    webhook's reply reaches the fake Graph API over HTTPS, vouched for by the system's hashed
    directory (standing in for /etc/ssl/certs) or by the operator's SSL_CERT_DIR or SSL_CERT_FILE."""
    import warnings

    with warnings.catch_warnings():  # starlette's note that its TestClient will move to httpx2
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from bot_core.asgi import create_app_from_config
    from bot_core.config import load_config
    from bot_core.storage import open_database
    from bot_core.webhook import meta
    from migrations.runner import MigrationRunner

    import bot_core.asgi

    context, ca_dir = server_tls
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    if route == "SSL_CERT_DIR":
        monkeypatch.setenv("SSL_CERT_DIR", ca_dir)
    elif route == "SSL_CERT_FILE":
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "cert.pem"))
    else:
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        monkeypatch.setattr(bot_core.asgi, "outbound_tls", lambda: outbound_tls(environ={}, ca_dir=ca_dir))
    db_url = f"sqlite:///{tmp_path}/bot.db"
    MigrationRunner(open_database(db_url)).up()
    secret = "s" * 32
    with FakeGraph(tls=context) as graph:
        config = load_config(None, env={"BOTCTL_DB": db_url, "BOTCTL_APP_SECRET": secret,
                                        "BOTCTL_VERIFY_TOKEN": "v", "BOTCTL_HASH_KEY": "h" * 32,
                                        "BOTCTL_WHATSAPP_TOKEN": "EAAG-token",
                                        "BOTCTL_WHATSAPP_PHONE_NUMBER_ID": "1234567890",
                                        "BOTCTL_WHATSAPP_BASE_URL": graph.url})
        body, headers = meta.signed_body(meta.envelope([meta.text_message("5215550001111", "hola",
                                                                          wamid="wamid.TLS1")]), secret)
        with TestClient(create_app_from_config(config, background=False)) as client:
            assert client.post("/webhook", content=body, headers=headers).status_code == 200
        assert graph.sent == 1 and graph.requests[0]["json"]["to"] == "5215550001111"
