"""Which certificate authorities the bot's outbound HTTPS clients (Graph API, AI providers) trust.

httpx's default is certifi's bundle, parsed whole (about 150 PEM certificates, ~20 ms of CPU)
by every client it builds: at every cold start on Azure Functions, once per client. The
operating system's hashed CA directory (OpenSSL's ``capath``: one file per certificate, named
by its subject hash) costs nothing to set up: OpenSSL reads only the issuers a handshake needs.
The Functions Linux images ship one (Debian's ca-certificates, kept current by the platform).

Order, first that applies:
1. ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` set: the operator chose; httpx honours them (True).
2. The system's CA directory holds hashed certificates: a context that looks issuers up there.
3. Otherwise certifi's bundle (httpx's own default, True).
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping

_HASHED_NAME = re.compile(r"[0-9a-f]{8}\.[0-9]+")


def outbound_tls(environ: Mapping[str, str] | None = None, ca_dir: str | None = None) -> ssl.SSLContext | bool:
    """The ``verify`` argument for every outbound ``httpx.AsyncClient`` of one app (build it once)."""
    environ = os.environ if environ is None else environ
    if environ.get("SSL_CERT_FILE") or environ.get("SSL_CERT_DIR"):
        return True
    ca_dir = ssl.get_default_verify_paths().capath if ca_dir is None else ca_dir
    if ca_dir and has_hashed_certificates(ca_dir):
        return ssl.create_default_context(capath=ca_dir)
    return True


def has_hashed_certificates(directory: str) -> bool:
    """True when ``directory`` holds at least one certificate under OpenSSL's hashed name."""
    try:
        with os.scandir(directory) as entries:
            return any(_HASHED_NAME.fullmatch(entry.name) for entry in entries)
    except OSError:  # missing, not a directory, unreadable
        return False
