"""A real `botctl serve` with an AI provider that hangs: every webhook answered in time, the breaker
opens and, when the provider recovers, closes again."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from bot_core.storage import open_database
from bot_core.webhook import meta
from migrations.runner import MigrationRunner
from tests.e2e.dbcheck import scalar
from tests.e2e.servers import APP_SECRET, BotServer
from tests.support.fake_http import FakeAI

pytestmark = [pytest.mark.e2e]
DEADLINE_MS = 500


def test_hanging_provider_falls_back_within_the_deadline_and_the_breaker_cycles(tmp_path):
    url = f"sqlite:///{tmp_path / 'ai.db'}"
    MigrationRunner(open_database(url)).up()
    with FakeAI("hang") as fake:
        env = {"BOTCTL_AI_PROVIDER": "openai", "BOTCTL_AI_BASE_URL": fake.url + "/v1", "BOTCTL_AI_MODEL": "m",
               "BOTCTL_AI_API_KEY": "sk-fake", "BOTCTL_AI_DEADLINE_DETECT_MS": str(DEADLINE_MS),
               "BOTCTL_AI_DEADLINE_EXTRACT_MS": str(DEADLINE_MS), "BOTCTL_AI_BREAKER_FAILURES": "4",
               "BOTCTL_AI_BREAKER_RESET_SECONDS": "1", "BOTCTL_AI_BREAKER_HALF_OPEN_SUCCESSES": "1"}
        with BotServer(url, tmp_path, env=env) as server:
            def send(i: int) -> float:
                body, headers = meta.signed_body(meta.envelope([meta.text_message(
                    f"5215557{i:06d}", "hola, ¿me ayudas?", wamid=f"wamid.AI{i}")]), APP_SECRET)
                started = time.monotonic()
                assert httpx.post(server.url + "/webhook", content=body, headers=headers, timeout=10).status_code == 200
                return time.monotonic() - started

            hanging = [send(i) for i in range(6)]
            fake.mode = "ok"
            fake.answer = {"intent": "SALUDO", "confidence": 0.95}
            time.sleep(1.1)
            recovered = [send(i) for i in range(6, 9)]
        events = [json.loads(line)["customDimensions"] for line in server.telemetry.read_text().splitlines()]
    # Each webhook: at most one deadline of waiting (detect and extract run concurrently) + 100 ms.
    assert max(hanging[:2]) < DEADLINE_MS / 1000 + 0.1 + 0.15  # small allowance for processing on 2 cores
    assert max(hanging[2:]) < DEADLINE_MS / 1000  # once open, the breaker answers at once
    assert max(recovered) < 1.0
    transitions = [(e["from_state"], e["to_state"]) for e in events if e["event_name"] == "breaker.transition"]
    assert transitions == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]
    timeouts = [e for e in events if e["event_name"] == "ai.timeout"]
    assert timeouts and {e["operation"] for e in timeouts} <= {"detectIntent", "extractStructuredData"}
    # Every message got its (rules) answer; the recovered ones were understood by the AI.
    assert scalar(url, "SELECT COUNT(*) FROM MensajesProcesados WHERE Estado = 'PROCESADO'") == 9
    assert scalar(url, "SELECT COUNT(DISTINCT MensajeOrigenId) FROM MensajesSalientes") == 9
