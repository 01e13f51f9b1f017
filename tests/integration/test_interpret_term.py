"""interpretTerm, wired where the release note uses it: a fault whose kind the rules cannot tell.

A real processor on real SQLite, its AI provider a fake OpenAI-compatible server on loopback.
At the menu, "se descompuso la vitrina" names no kind the rules know: the model is asked what
the term is, under its own deadline, outside any transaction; its fallback keeps the menu.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from bot_core import inbox
from bot_core.ai_providers import INTERPRET_PROMPT, AIIntentService, OpenAIChatClient
from bot_core.breaker import CircuitBreaker
from bot_core.dbexec import DbExecutor
from bot_core.storage import open_database
from bot_core.webhook.payload import InboundMessage
from bot_core.processing import Processor
from migrations.runner import MigrationRunner
from tests.conftest import captured_telemetry
from tests.support.fake_http import FakeAI

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
TEL = "5215550004444"
DEADLINE = 0.3


class WatchingAI(FakeAI):
    """Records each prompt, and whether the bot's database was free of a write transaction
    while the model was being asked (BEGIN IMMEDIATE succeeds at once only then)."""

    def __init__(self, db_file: str, **kwargs):
        self.db_file, self.prompts, self.db_free = db_file, [], []
        super().__init__(**kwargs)

    def _respond(self, method, path, headers, body):
        self.prompts.append(body["messages"][-1]["content"] if isinstance(body, dict) else "")
        conn = sqlite3.connect(self.db_file, timeout=0)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.rollback()
            self.db_free.append(True)
        except sqlite3.OperationalError:
            self.db_free.append(False)
        finally:
            conn.close()
        return super()._respond(method, path, headers, body)


@pytest.fixture
def bot(tmp_path):
    db_file = str(tmp_path / "bot.db")
    db = open_database(f"sqlite:///{db_file}")
    MigrationRunner(db).up()
    return db, db_file


def process(db, fake: FakeAI, text: str, deadline_interpret: float = DEADLINE):
    telemetry, capture = captured_telemetry()
    breaker = CircuitBreaker("ai-openai", telemetry, failure_threshold=10, reset_timeout_s=30)
    service = AIIntentService(OpenAIChatClient(fake.url + "/v1", "sk-test", "gpt-test"), telemetry, breaker,
                              DEADLINE, deadline_interpret, DEADLINE)
    message = InboundMessage("wamid.T1", TEL, "text", NOW, text=text)

    dbx = DbExecutor(db, threads=2)
    dbx.run_transaction(lambda cur: inbox.register_inbound(cur, db.dialect, message, NOW, NOW + timedelta(seconds=30)))

    async def go():
        try:
            return await Processor(dbx, telemetry, intent=service, clock=lambda: NOW).process(message)
        finally:
            await service.aclose()
            dbx.close()

    outcome = asyncio.run(go())
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT Estado FROM SesionesChat WHERE Telefono = ?", (TEL,))
        estado = cur.fetchone()[0]
        conn.rollback()
    return outcome, estado, capture


def interpret_calls(fake: WatchingAI) -> int:
    return sum(INTERPRET_PROMPT in p for p in fake.prompts)


def test_a_term_the_model_classifies_starts_that_report(bot):
    db, db_file = bot
    answer = {"intent": "REPORTAR_FALLA", "confidence": 0.9, "term": "VEHICULO"}
    with WatchingAI(db_file, answer=answer) as fake:
        outcome, estado, _ = process(db, fake, "se descompuso el tráiler")
    assert outcome.status == "processed" and estado.startswith("VEHICULO"), estado
    assert interpret_calls(fake) == 1 and len(fake.prompts) == 3  # detect, extract, interpret
    assert next(p for p in fake.prompts if INTERPRET_PROMPT in p).endswith("se descompuso el tráiler")
    assert all(fake.db_free), "an AI call was made while the database was held"


def test_when_the_model_hangs_the_rules_reading_is_interpreted_and_falls_back_to_the_menu(bot):
    db, db_file = bot
    with WatchingAI(db_file, mode="hang") as fake:
        outcome, estado, capture = process(db, fake, "se descompuso la vitrina")
    assert outcome.status == "processed" and estado == "INICIO"
    timeouts = [e.custom_dimensions for e in capture.events("ai.timeout")]
    assert [t["operation"] for t in timeouts if t["operation"] == "interpretTerm"] == ["interpretTerm"]
    assert next(t for t in timeouts if t["operation"] == "interpretTerm")["timeout_ms"] == int(DEADLINE * 1000)
    assert interpret_calls(fake) >= 1 and all(fake.db_free)


def test_the_interpretation_refines_the_rules_reading_when_the_model_only_answers_terms(bot):
    db, db_file = bot
    # detect/extract answers are invalid (no intent): they fall back; interpretTerm's is valid.
    with WatchingAI(db_file, answer={"term": "REFRIGERADOR"}) as fake:
        _, estado, capture = process(db, fake, "se descompuso la vitrina")
    assert estado.startswith("REFRI"), estado
    assert interpret_calls(fake) == 1


def test_a_null_term_keeps_the_menu(bot):
    db, db_file = bot
    with WatchingAI(db_file, answer={"intent": "REPORTAR_FALLA", "confidence": 0.9, "term": None}) as fake:
        _, estado, _ = process(db, fake, "se descompuso la vitrina")
    assert estado == "INICIO" and interpret_calls(fake) == 1


@pytest.mark.parametrize("text", ["mi refri 4001234 no enfría", "hola", "estado TK-000001"])
def test_what_the_rules_classify_is_never_sent_to_interpret(bot, text):
    db, db_file = bot
    with WatchingAI(db_file, mode="hang") as fake:
        process(db, fake, text)
    assert interpret_calls(fake) == 0


def test_the_default_deadline_is_the_release_notes_3_seconds():
    from bot_core.config import load_config

    assert load_config(None).get("ai.deadline_interpret_ms") == 3000
