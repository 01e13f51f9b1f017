"""Fuzzing POST /webhook with validly signed random and mutated Meta payloads: never a 5xx."""

from __future__ import annotations

import json
import logging
import time

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from bot_core.app import BotSettings, create_app
from bot_core.storage import open_database
from bot_core.telemetry import Telemetry
from bot_core.webhook import meta
from migrations.runner import MigrationRunner

SECRET = "fuzz-secret"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20)
message_types = st.sampled_from(["text", "interactive", "button", "image", "audio", "video", "document",
                                 "sticker", "location", "contacts", "reaction", "unsupported", "order", "", None])


@st.composite
def mutated_envelope(draw):
    plausible = draw(st.integers(0, 3)) > 0  # mostly well-formed ids and phones, so many get processed
    tel = draw(st.text(alphabet="0123456789", min_size=8 if plausible else 0, max_size=15 if plausible else 22))
    wamid = ("wamid." + draw(st.text(alphabet="ABCDEF0123456789", min_size=8, max_size=40)) if plausible
             else draw(st.one_of(st.text(max_size=140), st.integers(), st.none())))
    msg = {"from": tel, "id": wamid,
           "timestamp": draw(st.one_of(st.text(max_size=12), st.integers(), json_values)),
           "type": draw(message_types)}
    kind = msg["type"] or "text"
    msg[kind] = draw(st.one_of(json_values, st.fixed_dictionaries(
        {"body": st.text(max_size=200)}), st.fixed_dictionaries(
        {"type": st.sampled_from(["button_reply", "list_reply", "nfm_reply"]),
         "button_reply": st.fixed_dictionaries({"id": st.text(max_size=30), "title": st.text(max_size=30)})})))
    payload = meta.envelope([msg])
    value = payload["entry"][0]["changes"][0]["value"]
    if draw(st.booleans()):
        value["statuses"] = [{"id": draw(st.text(max_size=40)), "status": draw(st.text(max_size=12)),
                              "errors": draw(json_values)}]
    # Mutate one random spot of the envelope into random JSON.
    where = draw(st.sampled_from(["none", "none", "none", "entry", "changes", "value", "messages", "metadata"]))
    junk = draw(json_values)
    if where == "entry":
        payload["entry"] = junk
    elif where == "changes":
        payload["entry"][0]["changes"] = junk
    elif where == "value":
        payload["entry"][0]["changes"][0]["value"] = junk
    elif where == "messages":
        value["messages"] = junk
    elif where == "metadata":
        value["metadata"] = junk
    return payload


class Errors(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    db = open_database(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'f.db'}")
    MigrationRunner(db).up()
    errors = Errors()
    for name in ("", "starlette", "uvicorn", "botctl.events"):
        logging.getLogger(name).addHandler(errors)
    app = create_app(db, BotSettings(app_secret=SECRET, verify_token="t", inline_deadline_s=5),
                     Telemetry(b"k", logging.getLogger("fuzz.events")))
    with TestClient(app, raise_server_exceptions=False) as c:
        c.errors = errors
        c.db = db
        yield c
    for name in ("", "starlette", "uvicorn", "botctl.events"):
        logging.getLogger(name).removeHandler(errors)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=mutated_envelope())
def test_signed_random_payloads_never_get_a_5xx(client, payload):
    body = json.dumps(payload).encode()
    body, headers = meta.signed_body(payload, SECRET)
    response = client.post("/webhook", content=body, headers=headers)
    assert response.status_code < 500, (response.status_code, response.text, payload)
    assert client.errors.records == [], [r.getMessage() for r in client.errors.records]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=300))
def test_signed_random_bytes_never_get_a_5xx(client, body):
    from bot_core.webhook.signature import sign

    response = client.post("/webhook", content=body, headers={"X-Hub-Signature-256": sign(body, SECRET)})
    assert response.status_code in (200, 400), (response.status_code, body)
    assert client.errors.records == []


def _inbox_counts(db) -> tuple[int, int]:
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*), SUM(CASE WHEN Estado = 'PROCESADO' THEN 1 ELSE 0 END) FROM MensajesProcesados")
        total, processed = cur.fetchone()
        conn.rollback()
    return int(total or 0), int(processed or 0)


def test_the_fuzzing_reaches_the_pipeline(client):
    """The generator's payloads are not all rejected at the door: many are recorded and processed.
    It fuzzes on its own (seeded), so it holds alone and in any order."""
    before = _inbox_counts(client.db)
    received = []

    @seed(1414)
    @settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(payload=mutated_envelope())
    def post(payload):
        body, headers = meta.signed_body(payload, SECRET)
        response = client.post("/webhook", content=body, headers=headers)
        assert response.status_code < 500
        received.append(response.json().get("received", 0) if response.status_code == 200 else 0)

    post()
    # A message whose processing outlives the inline deadline (a loaded machine) is finished by
    # the app's background loop: wait for it rather than count too early.
    deadline = time.monotonic() + 60
    while True:
        total, processed = (after - prior for after, prior in zip(_inbox_counts(client.db), before))
        if processed >= 10 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sum(received) >= 10 and total >= 10 and processed >= 10, (sum(received), total, processed)
