"""AI understanding behind IntentService: OpenAI-compatible Chat Completions and Gemini.

Three calls, each with its own deadline and the release note's fallback value,
all through one circuit breaker per provider:

    extractStructuredData  4 s  -> {"intent": "REPORTAR_FALLA", "confidence": 0, "reason": "timeout"}
    interpretTerm          3 s  -> None (the term is left as typed)
    detectIntent           3 s  -> Understanding("OTRO", confidence 0, source "fallback")

``understand`` runs detectIntent and extractStructuredData concurrently and
returns None when either fell back, so the offline rules decide (with the
session state) instead of a guess. The processor calls interpretTerm after
that, at the menu, for a fault whose kind no one could tell (see
``Processor._interpret_kind``). The model's JSON is validated strictly:
anything unexpected is an error, and an error is a fallback.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any, Protocol

import httpx

from bot_core.breaker import CircuitBreaker
from bot_core.conversation.model import ENTITY_KEYS, INTENTS, Understanding
from bot_core.errors import ConfigError
from bot_core.policies import CallPolicy, PermanentError
from bot_core.telemetry import Telemetry

EXTRACT_FALLBACK: dict[str, Any] = {"intent": "REPORTAR_FALLA", "confidence": 0, "reason": "timeout"}
DETECT_FALLBACK = Understanding("OTRO", {}, 0.0, "fallback")

SYSTEM_PROMPT = (
    "Eres el clasificador de un bot de WhatsApp donde técnicos de campo reportan fallas de "
    "refrigeradores (identificados por código SAP de 7 a 10 dígitos) y de vehículos (número de "
    "empleado y placa). Responde SOLO con un objeto JSON, sin texto adicional."
)
DETECT_PROMPT = ("Clasifica la intención del mensaje. Intenciones: " + ", ".join(INTENTS) +
                 '. Responde {"intent": "<INTENCIÓN>", "confidence": <0 a 1>}. Mensaje: ')
EXTRACT_PROMPT = ("Extrae los datos del reporte. Responde {\"intent\": \"<INTENCIÓN>\", \"confidence\": <0 a 1>, "
                  + ", ".join(f'"{k}": <texto o null>' for k in ENTITY_KEYS) + "}. Mensaje: ")
INTERPRET_PROMPT = ('Interpreta el término como "REFRIGERADOR", "VEHICULO" o null. '
                    'Responde {"term": <valor o null>}. Término: ')


class ProviderError(PermanentError):
    """The provider answered, but not with what we asked for."""


class ModelClient(Protocol):
    provider: str

    async def complete_json(self, system: str, user: str) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


def _json_object(text: Any) -> dict[str, Any]:
    if not isinstance(text, str):
        raise ProviderError("no text in the answer")
    try:
        value = json.loads(text)
    except ValueError:
        raise ProviderError("the answer is not JSON") from None
    if not isinstance(value, dict):
        raise ProviderError("the answer is not a JSON object")
    return value


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code >= 500 or response.status_code == 429:
        raise httpx.HTTPStatusError(f"{response.status_code}", request=response.request, response=response)
    if response.status_code >= 400:
        raise ProviderError(f"HTTP {response.status_code}")


class OpenAIChatClient:
    """Any OpenAI-compatible Chat Completions endpoint (OpenAI, Azure OpenAI, local servers).

    ``base_url`` is the API root: https://api.openai.com/v1, a local server's /v1, or for
    Azure OpenAI https://<res>.openai.azure.com/openai/deployments/<deployment> (then the key
    goes in ``api-key`` and ``api-version`` is added)."""

    provider = "openai"
    AZURE_API_VERSION = "2024-10-21"

    def __init__(self, base_url: str, api_key: str, model: str, http: httpx.AsyncClient | None = None,
                 verify: ssl.SSLContext | bool = True):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.azure = ".openai.azure.com" in self.base_url
        headers = {"api-key": api_key} if self.azure else {"Authorization": f"Bearer {api_key}"}
        self.http = http or httpx.AsyncClient(headers=headers, limits=httpx.Limits(max_connections=32), verify=verify)
        if http is not None:
            self.http.headers.update(headers)

    async def complete_json(self, system: str, user: str) -> dict[str, Any]:
        params = {"api-version": self.AZURE_API_VERSION} if self.azure else None
        response = await self.http.post(f"{self.base_url}/chat/completions", params=params, json={
            "model": self.model, "temperature": 0, "response_format": {"type": "json_object"},
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]})
        _raise_for_status(response)
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ProviderError("unexpected Chat Completions response") from None
        return _json_object(content)

    async def aclose(self) -> None:
        await self.http.aclose()


class GeminiClient:
    """Gemini generateContent REST, JSON output."""

    provider = "gemini"

    def __init__(self, base_url: str, api_key: str, model: str, http: httpx.AsyncClient | None = None,
                 verify: ssl.SSLContext | bool = True):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.http = http or httpx.AsyncClient(limits=httpx.Limits(max_connections=32), verify=verify)
        self.http.headers.update({"x-goog-api-key": api_key})

    async def complete_json(self, system: str, user: str) -> dict[str, Any]:
        response = await self.http.post(f"{self.base_url}/v1beta/models/{self.model}:generateContent", json={
            "systemInstruction": {"parts": [{"text": system}]},
            "contents": [{"role": "user", "parts": [{"text": user}]}],
            "generationConfig": {"responseMimeType": "application/json", "temperature": 0}})
        _raise_for_status(response)
        try:
            text = response.json()["candidates"][0]["content"]["parts"][0]["text"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ProviderError("unexpected generateContent response") from None
        return _json_object(text)

    async def aclose(self) -> None:
        await self.http.aclose()


def _confidence(value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
        raise ProviderError("confidence must be a number within 0..1")
    return float(value)


def _intent(value: Any) -> str:
    if value not in INTENTS:
        raise ProviderError(f"unknown intent {str(value)[:40]!r}")
    return value


class AIIntentService:
    """IntentService over a model: deadlines, fallbacks and a breaker on every call."""

    remote = True

    def __init__(self, client: ModelClient, telemetry: Telemetry, breaker: CircuitBreaker,
                 deadline_extract_s: float = 4.0, deadline_interpret_s: float = 3.0,
                 deadline_detect_s: float = 3.0, retries: int = 1):
        self.client = client
        self.provider = client.provider
        self.breaker = breaker

        def policy(operation: str, deadline: float) -> CallPolicy:
            # One retry only when it still fits in the deadline: the deadline is the budget.
            return CallPolicy(operation, self.provider, telemetry, deadline_s=deadline, budget_s=deadline,
                              retries=retries, breaker=breaker)

        self.extract_policy = policy("extractStructuredData", deadline_extract_s)
        self.interpret_policy = policy("interpretTerm", deadline_interpret_s)
        self.detect_policy = policy("detectIntent", deadline_detect_s)

    async def detect_intent(self, text: str, estado: str | None = None) -> Understanding:
        async def call() -> Understanding:
            data = await self.client.complete_json(SYSTEM_PROMPT, DETECT_PROMPT + text)
            return Understanding(_intent(data.get("intent")), {}, _confidence(data.get("confidence")), "ai")

        return (await self.detect_policy.run(call, DETECT_FALLBACK)).value

    async def extract_structured_data(self, text: str, estado: str | None = None) -> dict[str, Any]:
        async def call() -> dict[str, Any]:
            data = await self.client.complete_json(SYSTEM_PROMPT, EXTRACT_PROMPT + text)
            out: dict[str, Any] = {"intent": _intent(data.get("intent")),
                                   "confidence": _confidence(data.get("confidence"))}
            for key in ENTITY_KEYS:
                value = data.get(key)
                if value is not None and not isinstance(value, str):
                    raise ProviderError(f"{key} must be text or null")
                if value:
                    out[key] = value
            return out

        return (await self.extract_policy.run(call, dict(EXTRACT_FALLBACK))).value

    async def interpret_term(self, term: str, estado: str | None = None) -> str | None:
        async def call() -> str | None:
            value = (await self.client.complete_json(SYSTEM_PROMPT, INTERPRET_PROMPT + term)).get("term")
            if value not in (None, "REFRIGERADOR", "VEHICULO"):
                raise ProviderError("unknown term")
            return value

        return (await self.interpret_policy.run(call, None)).value

    async def understand(self, text: str | None, estado: str | None) -> Understanding | None:
        if not text:
            return None
        detected, data = await asyncio.gather(self.detect_intent(text, estado),
                                              self.extract_structured_data(text, estado))
        if detected.source == "fallback" or data.get("reason") == "timeout":
            return None  # the rules decide, with the session state
        entities = {k: data[k] for k in ENTITY_KEYS if k in data}
        return Understanding(detected.intent, entities, min(detected.confidence, data["confidence"]), "ai")

    async def aclose(self) -> None:
        await self.client.aclose()


def build_intent_service(config: Any, telemetry: Telemetry, verify: ssl.SSLContext | bool = True):
    """The IntentService the configuration names: ``rules`` (default), ``openai`` or ``gemini``.

    ``verify``: the trust for the provider's HTTPS (``bot_core.tls.outbound_tls``)."""
    from bot_core.intent import RulesIntentService

    provider = config.get("ai.provider")
    if provider == "rules":
        return RulesIntentService()
    if provider not in ("openai", "gemini"):
        raise ConfigError(f"ai.provider must be rules, openai or gemini, not {provider!r}")
    key, model = config.get("ai.api_key"), config.get("ai.model")
    base_url = config.get("ai.base_url") or {"openai": "https://api.openai.com/v1",
                                             "gemini": "https://generativelanguage.googleapis.com"}[provider]
    if not key:
        raise ConfigError(f"ai.provider {provider} needs BOTCTL_AI_API_KEY (or ai.api_key_file)")
    if not model:
        raise ConfigError(f"ai.provider {provider} needs ai.model")
    client = (OpenAIChatClient if provider == "openai" else GeminiClient)(base_url, key, model, verify=verify)
    breaker = CircuitBreaker(f"ai-{provider}", telemetry, failure_threshold=config.get("ai.breaker_failures"),
                             reset_timeout_s=config.get("ai.breaker_reset_seconds"),
                             success_threshold=config.get("ai.breaker_half_open_successes"),
                             half_open_max_calls=config.get("ai.breaker_half_open_probes"))
    return AIIntentService(client, telemetry, breaker,
                           deadline_extract_s=config.get("ai.deadline_extract_ms") / 1000,
                           deadline_interpret_s=config.get("ai.deadline_interpret_ms") / 1000,
                           deadline_detect_s=config.get("ai.deadline_detect_ms") / 1000)
