"""Decoding Meta's webhook payloads and checking their signatures."""

from __future__ import annotations

import json

import pytest

from bot_core.webhook import meta
from bot_core.webhook.payload import PayloadError, decode_webhook
from bot_core.webhook.signature import sign, signature_is_valid, verification_challenge

TEL = "5215550000001"


def _one(msg: dict) -> dict:
    return meta.envelope([msg])


@pytest.mark.parametrize("raw, kind, text, reply_id", [
    (meta.text_message(TEL, "hola"), "text", "hola", None),
    (meta.reply_message(TEL, "menu_refri", "Refrigerador"), "interactive", "Refrigerador", "menu_refri"),
    (meta.reply_message(TEL, "row_1", "Opción", kind="list"), "interactive", "Opción", "row_1"),
    ({"from": TEL, "id": "wamid.B", "timestamp": "1", "type": "button",
      "button": {"text": "Sí", "payload": "confirmar"}}, "button", "Sí", "confirmar"),
    ({"from": TEL, "id": "wamid.I", "timestamp": "1", "type": "image",
      "image": {"id": "m1", "caption": "foto del refri"}}, "image", "foto del refri", None),
    (meta.media_message(TEL, "audio"), "audio", None, None),
    (meta.media_message(TEL, "video"), "video", None, None),
    (meta.media_message(TEL, "document"), "document", None, None),
    (meta.media_message(TEL, "sticker"), "sticker", None, None),
    ({"from": TEL, "id": "wamid.L", "timestamp": "1", "type": "location",
      "location": {"latitude": 19.4, "longitude": -99.1, "name": "Tienda"}}, "location", "Tienda", None),
    ({"from": TEL, "id": "wamid.C", "timestamp": "1", "type": "contacts", "contacts": [{"name": {}}]},
     "contacts", None, None),
    ({"from": TEL, "id": "wamid.R", "timestamp": "1", "type": "reaction",
      "reaction": {"message_id": "wamid.X", "emoji": "👍"}}, "reaction", "👍", None),
    ({"from": TEL, "id": "wamid.U", "timestamp": "1", "type": "unsupported",
      "errors": [{"code": 131051, "title": "Message type unknown"}]}, "unsupported", None, None),
    ({"from": TEL, "id": "wamid.N", "timestamp": "1", "type": "order", "order": {}}, "order", None, None),
    ({"from": TEL, "id": "wamid.F", "timestamp": "1", "type": "interactive",
      "interactive": {"type": "nfm_reply", "nfm_reply": {}}}, "nfm_reply", None, None),
    ({"from": TEL, "id": "wamid.CP", "timestamp": "1", "type": "interactive",
      "interactive": {"type": "call_permission_reply", "call_permission_reply": {"response": "accept"}}},
     "call_permission_reply", "accept", None),
    ({"from": TEL, "id": "wamid.RR", "timestamp": "1", "type": "reaction",
      "reaction": {"message_id": "wamid.X"}}, "reaction", None, None),
    ({"from": TEL, "id": "wamid.E", "timestamp": "1", "type": "edit",
      "edit": {"original_message_id": "wamid.O", "message": {"type": "text", "text": {"body": "4001234"}}}},
     "edit", "4001234", None),
    ({"from": TEL, "id": "wamid.V", "timestamp": "1", "type": "revoke",
      "revoke": {"original_message_id": "wamid.O"}}, "revoke", None, None),
    ({"from": TEL, "id": "wamid.S", "timestamp": "1", "type": "system",
      "system": {"body": "User A changed from 1 to 2", "wa_id": "5215550000009", "type": "user_changed_number"}},
     "system", "User A changed from 1 to 2", None),
    ({"from": TEL, "id": "wamid.Z", "timestamp": "1", "type": "holographic"}, "unsupported", None, None),
])
def test_every_message_type_decodes(raw, kind, text, reply_id):
    batch = decode_webhook(_one(raw))
    (msg,) = batch.messages
    assert (msg.kind, msg.text, msg.reply_id, msg.telefono) == (kind, text, reply_id, TEL)
    assert msg.phone_number_id == meta.PHONE_NUMBER_ID


def test_unknown_fields_are_tolerated_and_bad_items_skipped():
    payload = meta.envelope([meta.text_message(TEL, "uno"), {"type": "text"}, meta.text_message(TEL, "dos")])
    payload["entry"][0]["changes"][0]["value"]["brand_new_field"] = {"x": 1}
    payload["entry"][0]["future"] = True
    payload["entry"].append({"id": "2", "changes": [{"field": "messages", "value": {
        "messages": [meta.text_message("5215550000002", "tres")]}}]})
    batch = decode_webhook(payload)
    assert [m.text for m in batch.messages] == ["uno", "dos", "tres"]
    assert [i.reason for i in batch.invalid] == ["message without id"]


BSUID, PARENT = "US.13491208655302741918", "US.ENT.11815799212886844830"


def test_a_user_without_a_phone_is_known_by_the_bsuid():
    """Meta's shape for a user with a username: no messages[].from, no contacts[].wa_id."""
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": "1"},
        "contacts": [{"profile": {"name": "Ana", "username": "@ana"}, "user_id": BSUID, "parent_user_id": PARENT}],
        "messages": [{"from_user_id": BSUID, "id": "wamid.B1", "timestamp": "1", "type": "text",
                      "text": {"body": "hola"}}]}}]}]}
    (msg,) = decode_webhook(payload).messages
    assert (msg.telefono, msg.user_id, msg.parent_user_id, msg.user_key) == (None, BSUID, PARENT, BSUID)


def test_phone_and_bsuid_both_kept_and_the_bsuid_is_the_user_key():
    raw = meta.text_message(TEL, "hola")
    payload = meta.envelope([raw])
    payload["entry"][0]["changes"][0]["value"]["contacts"][0]["user_id"] = BSUID
    (msg,) = decode_webhook(payload).messages
    assert (msg.telefono, msg.user_id, msg.user_key) == (TEL, BSUID, BSUID)


@pytest.mark.parametrize("sender, reason", [
    ({"from": "+52 155"}, "digits"), ({"from": "5" * 21}, "digits"), ({"from": "abc"}, "digits"),
    ({"from_user_id": "us.123"}, "business-scoped"), ({"from_user_id": "US." + "1" * 129}, "business-scoped"),
    ({"from_user_id": "US.12 3"}, "business-scoped"), ({"from_user_id": "USA.123"}, "business-scoped"),
    ({}, "without a sender"),
])
def test_malformed_identifiers_skip_only_that_message(sender, reason):
    bad = {**sender, "id": "wamid.BAD", "timestamp": "1", "type": "text", "text": {"body": "x"}}
    batch = decode_webhook(meta.envelope([bad, meta.text_message(TEL, "bien")], contacts=False))
    assert [m.text for m in batch.messages] == ["bien"]
    assert reason in batch.invalid[0].reason and batch.invalid[0].message_id == "wamid.BAD"


def test_status_with_the_recipient_user_id():
    status = {**meta.status_update("wamid.OUT1", "read", TEL), "recipient_user_id": BSUID}
    (s,) = decode_webhook(meta.envelope(statuses=[status])).statuses
    assert (s.wamid, s.recipient_user_id) == ("wamid.OUT1", BSUID)


def test_statuses_and_errors():
    payload = meta.envelope(statuses=[
        meta.status_update("wamid.OUT1", "delivered", TEL),
        meta.status_update("wamid.OUT2", "failed", TEL, [{"code": 131047, "title": "Re-engagement message"}])])
    payload["entry"][0]["changes"][0]["value"]["errors"] = [{"code": 130429, "title": "Rate limit hit"}]
    batch = decode_webhook(payload)
    assert [(s.wamid, s.status) for s in batch.statuses] == [("wamid.OUT1", "delivered"), ("wamid.OUT2", "failed")]
    assert batch.statuses[1].errors[0].code == 131047 and batch.errors[0].code == 130429
    assert batch.messages == []


@pytest.mark.parametrize("body", [[], "text", {"object": "x"}, {"entry": "nope"}])
def test_not_an_envelope(body):
    with pytest.raises(PayloadError):
        decode_webhook(body)


def test_payload_round_trips_through_the_inbox_json():
    (msg,) = decode_webhook(_one(meta.text_message(TEL, "'; DROP TABLE Reportes;-- ñ 🚚"))).messages
    from bot_core.webhook.payload import InboundMessage

    assert InboundMessage.from_json(json.loads(json.dumps(msg.to_json()))) == msg


def test_signature_over_the_raw_bytes():
    body = json.dumps({"text": "¿Qué tal? 🚚"}).encode()  # \u-escaped, as Meta sends
    header = sign(body, "secret")
    assert signature_is_valid(body, header, "secret")
    assert signature_is_valid(body, header.upper().replace("SHA256=", "sha256="), "secret")
    assert not signature_is_valid(body, header, "other-secret")
    assert not signature_is_valid(body + b" ", header, "secret")
    assert not signature_is_valid(body, None, "secret")
    assert not signature_is_valid(body, "sha1=" + header[7:], "secret")
    assert not signature_is_valid(body, "sha256=zz", "secret")
    assert not signature_is_valid(body, "sha256=ñ", "secret")
    raw_utf8 = '{"text":"¿Qué tal? 🚚"}'.encode()
    assert signature_is_valid(raw_utf8, sign(raw_utf8, "secret"), "secret")


def test_verification_handshake():
    ok = {"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "1158201444"}
    assert verification_challenge(ok, "tok") == "1158201444"
    assert verification_challenge({**ok, "hub.verify_token": "bad"}, "tok") is None
    assert verification_challenge({**ok, "hub.mode": "unsubscribe"}, "tok") is None
    assert verification_challenge({"hub.mode": "subscribe", "hub.verify_token": "tok"}, "tok") is None


def test_verification_handshake_boundaries():
    ok = {"hub.mode": "subscribe", "hub.verify_token": "tok"}
    assert verification_challenge({**ok, "hub.challenge": "c" * 256}, "tok") == "c" * 256
    assert verification_challenge({**ok, "hub.challenge": "c" * 257}, "tok") is None  # echo nothing long
    assert verification_challenge({**ok, "hub.challenge": ""}, "tok") is None
    assert verification_challenge({"hub.mode": "subscribe", "hub.challenge": "42"}, "tok") is None  # no token
    assert verification_challenge({**ok, "hub.challenge": "42"}, "tok") == "42"


@pytest.mark.parametrize("configured", ["tok", "XXXX", "a-long-verify-token-0123456789"])
def test_handshake_without_a_token_is_refused_whatever_the_configured_token(configured):
    # A missing hub.verify_token is no token at all, never a stand-in value that one configured
    # token could happen to equal.
    params = {"hub.mode": "subscribe", "hub.challenge": "42"}
    assert verification_challenge(params, configured) is None
    assert verification_challenge({**params, "hub.verify_token": configured}, configured) == "42"
