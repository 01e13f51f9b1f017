"""Which certificate authorities the bot's outbound HTTPS clients (Graph API, AI providers) trust.

httpx's default is certifi's bundle, parsed whole (about 150 PEM certificates, ~20 ms of CPU)
by every client it builds: at every cold start on Azure Functions, once per client. The
operating system's hashed CA directory (OpenSSL's ``capath``: one file per certificate, named
by its subject hash) costs nothing to set up: OpenSSL reads only the issuers a handshake needs.
The Functions Linux images ship one (Debian's ca-certificates, kept current by the platform).

One context per app, shared by every outbound client; the first of these that applies:
1. ``SSL_CERT_FILE`` (a bundle, parsed whole) or ``SSL_CERT_DIR`` (a hashed directory): the
   operator chose, as httpx would honour them. One that cannot be read stops the app.
2. The system's CA directory, when it holds hashed certificates.
3. Otherwise certifi's bundle (httpx's own default).
Certificate and host name checks are on in every case.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
from collections.abc import Mapping

from bot_core.errors import ConfigError

_HASHED_NAME = re.compile(r"[0-9a-f]{8}\.[0-9]+")


def outbound_tls(environ: Mapping[str, str] | None = None, ca_dir: str | None = None) -> ssl.SSLContext:
    """The ``verify`` context for every outbound ``httpx.AsyncClient`` of one app (build it once).

    ``environ`` and ``ca_dir`` default to the process's environment and OpenSSL's CA directory."""
    environ = os.environ if environ is None else environ
    if environ.get("SSL_CERT_FILE"):
        trust, context = f"SSL_CERT_FILE {environ['SSL_CERT_FILE']}", _context(cafile=environ["SSL_CERT_FILE"])
    elif environ.get("SSL_CERT_DIR"):
        if not os.path.isdir(environ["SSL_CERT_DIR"]):
            raise ConfigError(f"SSL_CERT_DIR {environ['SSL_CERT_DIR']} is not a directory")
        trust, context = f"SSL_CERT_DIR {environ['SSL_CERT_DIR']}", _context(capath=environ["SSL_CERT_DIR"])
    else:
        ca_dir = ssl.get_default_verify_paths().capath if ca_dir is None else ca_dir
        if ca_dir and has_hashed_certificates(ca_dir):
            trust, context = f"the system's CA directory {ca_dir}", _context(capath=ca_dir)
        else:
            import certifi  # httpx's own dependency

            trust, context = "certifi's bundle", _context(cafile=certifi.where())
    logging.getLogger("botctl.tls").info("outbound HTTPS trusts %s", trust)
    return context


def has_hashed_certificates(directory: str) -> bool:
    """True when ``directory`` holds at least one readable file under OpenSSL's hashed name
    (a link whose certificate is gone does not count)."""
    try:
        with os.scandir(directory) as entries:
            return any(_HASHED_NAME.fullmatch(entry.name) and entry.is_file() for entry in entries)
    except OSError:  # missing, not a directory, unreadable
        return False


def _context(cafile: str | None = None, capath: str | None = None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the CA certificates in {cafile or capath}: "
                          f"{exc.strerror or exc}") from None
