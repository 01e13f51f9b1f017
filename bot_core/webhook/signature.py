"""Meta's webhook authentication: ``X-Hub-Signature-256`` and the verification handshake."""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def sign(body: bytes, app_secret: str) -> str:
    """The header value Meta sends for ``body`` (used by botctl chat and loadtest)."""
    return PREFIX + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_is_valid(body: bytes, header: str | None, app_secret: str) -> bool:
    """HMAC-SHA256 of the raw bytes, compared in constant time.

    Meta sends lowercase hex; an uppercase digest is accepted (hex is hex), a
    ``sha1=`` header is not (that is the legacy X-Hub-Signature scheme).
    """
    if not header or not header.startswith(PREFIX):
        return False
    given = header[len(PREFIX):].strip().lower()
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(given.encode("ascii", "replace"), expected.encode())


def verification_challenge(params: dict[str, str], verify_token: str) -> str | None:
    """The ``hub.challenge`` to echo, or None when the handshake must be refused."""
    if params.get("hub.mode") != "subscribe":
        return None
    given = params.get("hub.verify_token", "")
    if not hmac.compare_digest(given.encode(), verify_token.encode()):
        return None
    challenge = params.get("hub.challenge")
    return challenge if challenge and len(challenge) <= 256 else None
