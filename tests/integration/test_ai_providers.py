"""AI providers against fake servers on loopback: deadlines, fallbacks, the breaker, no leaks."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from bot_core.ai_providers import (DETECT_FALLBACK, EXTRACT_FALLBACK, AIIntentService, GeminiClient,
                                   OpenAIChatClient, build_intent_service)
from bot_core.breaker import CLOSED, OPEN, CircuitBreaker
from bot_core.config import load_config
from bot_core.errors import ConfigError
from tests.conftest import captured_telemetry
from tests.support.fake_http import FakeAI

DEADLINE = 0.4


def service(fake: FakeAI, kind: str = "openai", failures: int = 3, reset_s: float = 0.5):
    telemetry, capture = captured_telemetry()
    client = (OpenAIChatClient(fake.url + "/v1", "sk-test", "gpt-test") if kind == "openai"
              else GeminiClient(fake.url, "g-key", "gemini-test"))
    breaker = CircuitBreaker(f"ai-{kind}", telemetry, failure_threshold=failures, reset_timeout_s=reset_s,
                             success_threshold=1)
    return AIIntentService(client, telemetry, breaker, DEADLINE, DEADLINE, DEADLINE), capture


def own_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:  # the fd listing itself, closed meanwhile
            pass
    return count


@pytest.mark.parametrize("kind", ["openai", "gemini"])
def test_a_healthy_provider_understands(kind):
    with FakeAI("ok") as fake:
        ai, _ = service(fake, kind)

        async def scenario():
            try:
                return await ai.understand("mi refri 4001234 no enfría", "INICIO")
            finally:
                await ai.aclose()

        understanding = asyncio.run(scenario())
    assert understanding.source == "ai" and understanding.intent == "REPORTE_REFRIGERADOR"
    assert understanding.entities == {"codigo_sap": "4001234", "problema": "no enfría"}
    request = fake.requests[0]
    if kind == "openai":
        assert request["path"] == "/v1/chat/completions" and request["headers"]["authorization"] == "Bearer sk-test"
        assert request["json"]["response_format"] == {"type": "json_object"}
    else:
        assert request["path"] == "/v1beta/models/gemini-test:generateContent"
        assert request["headers"]["x-goog-api-key"] == "g-key"
        assert request["json"]["generationConfig"]["responseMimeType"] == "application/json"


@pytest.mark.parametrize("mode", ["slow", "hang", "500", "invalid-json", "close"])
def test_every_failure_mode_falls_back_within_the_deadline(mode):
    sockets_before = own_sockets()
    with FakeAI(mode, delay_s=5.0) as fake:
        ai, capture = service(fake, failures=100)

        async def scenario():
            started = time.monotonic()
            extract = await ai.extract_structured_data("mi refri no enfría")
            detect = await ai.detect_intent("hola")
            understood = await ai.understand("hola", "INICIO")
            elapsed = time.monotonic() - started
            await ai.aclose()
            await asyncio.sleep(0.05)
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            return extract, detect, understood, elapsed, pending

        extract, detect, understood, elapsed, pending = asyncio.run(scenario())
        time.sleep(0.1)
        fake_connections = fake.open_connections
    assert extract == EXTRACT_FALLBACK and detect == DETECT_FALLBACK and understood is None
    assert elapsed < 3 * (DEADLINE + 0.1)  # three sequential operations, each within its deadline
    assert pending == []
    assert fake_connections == 0 and own_sockets() <= sockets_before
    if mode in ("slow", "hang"):
        (first, *_) = capture.events("ai.timeout")
        assert first.getMessage() == f"[Timeout] extractStructuredData excedió {int(DEADLINE * 1000)}ms, usando fallback"
        assert first.custom_dimensions["provider"] == "openai"
    else:
        assert capture.events("ai.error") and not capture.events("ai.timeout")


def test_breaker_opens_probes_and_closes_against_a_provider_that_recovers():
    with FakeAI("500") as fake:
        ai, capture = service(fake, failures=3, reset_s=0.5)

        async def scenario():
            for _ in range(3):
                await ai.detect_intent("hola")
            assert ai.breaker.state == OPEN
            calls = len(fake.requests)
            started = time.monotonic()
            assert await ai.detect_intent("hola") == DETECT_FALLBACK
            assert time.monotonic() - started < 0.05 and len(fake.requests) == calls  # fast, not sent
            fake.mode = "ok"
            await asyncio.sleep(0.55)
            assert (await ai.detect_intent("hola")).source == "ai"  # the probe goes through
            assert ai.breaker.state == CLOSED
            await ai.aclose()

        asyncio.run(scenario())
    states = [(r.custom_dimensions["from_state"], r.custom_dimensions["to_state"])
              for r in capture.events("breaker.transition")]
    assert states == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]


def test_build_intent_service_from_config(tmp_path):
    assert build_intent_service(load_config(None, env={}), captured_telemetry()[0]).provider == "rules"
    with pytest.raises(ConfigError, match="needs BOTCTL_AI_API_KEY"):
        build_intent_service(load_config(None, env={"BOTCTL_AI_PROVIDER": "openai", "BOTCTL_AI_MODEL": "m"}),
                             captured_telemetry()[0])
    with pytest.raises(ConfigError, match="rules, openai or gemini"):
        build_intent_service(load_config(None, env={"BOTCTL_AI_PROVIDER": "claude"}), captured_telemetry()[0])
    ai = build_intent_service(load_config(None, env={"BOTCTL_AI_PROVIDER": "gemini", "BOTCTL_AI_MODEL": "g",
                                                     "BOTCTL_AI_API_KEY": "k", "BOTCTL_AI_DEADLINE_DETECT_MS": "1500"}),
                              captured_telemetry()[0])
    assert ai.provider == "gemini" and ai.detect_policy.deadline_s == 1.5 and ai.extract_policy.deadline_s == 4.0
    asyncio.run(ai.aclose())
