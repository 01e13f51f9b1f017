"""Azure Functions entry point: the same ASGI app as `botctl serve`, hosted by AsgiFunctionApp.

Settings come from the Function App's application settings (BOTCTL_DB, BOTCTL_APP_SECRET,
BOTCTL_VERIFY_TOKEN, APPLICATIONINSIGHTS_CONNECTION_STRING, ...), read by bot_core.config.
Auth level is ANONYMOUS on purpose: Meta cannot send a function key, and the
X-Hub-Signature-256 check is the authentication. See docs/azure-functions.md.

Nothing runs between invocations here (an idle instance is frozen), so the app starts no
background loops: each webhook request sends its own message's replies right after the
commit, and the timer function below runs one bounded round of what `botctl serve`'s loops
do (inbox sweep, outbox retries) with the same code.
"""

import logging
import sys

# httpx imports its optional command-line client (click, rich, pygments) whenever they are
# importable, and Typer (botctl's CLI, in the same package) brings them: about 40 ms of every
# cold start for a client this app never runs. A None entry makes that import fail, which
# httpx expects (it then defines a stub `httpx.main`). Set before anything imports httpx.
sys.modules.setdefault("httpx._main", None)

import azure.functions as func  # noqa: E402

from bot_core.appinsights import configure_app_insights, instrument_asgi  # noqa: E402
from bot_core.asgi import create_app_from_config  # noqa: E402
from bot_core.config import load_config  # noqa: E402
from bot_core.errors import BotctlError  # noqa: E402

insights = configure_app_insights()  # False without APPLICATIONINSIGHTS_CONNECTION_STRING
try:
    config = load_config()
    # No pending-migrations probe here: migrations run from CI/CD with `botctl migrate up`,
    # and the deployable package does not ship the migrations runner. No host either: this
    # is never local development, so it refuses to start without BOTCTL_APP_SECRET,
    # BOTCTL_VERIFY_TOKEN and BOTCTL_HASH_KEY.
    webhook = create_app_from_config(config, background=False)
except BotctlError as exc:
    raise SystemExit(f"botctl: {exc}") from None
# Request spans only when they have somewhere to go (the instrumentation costs a cold start ~50 ms).
app = func.AsgiFunctionApp(app=instrument_asgi(webhook) if insights else webhook,
                           http_auth_level=func.AuthLevel.ANONYMOUS)


@app.timer_trigger(schedule=config.get("timer_schedule"), arg_name="timer", run_on_startup=False,
                   use_monitor=True)
async def outbox_and_sweep(timer: func.TimerRequest) -> None:
    """One round: take over inbox rows whose lease expired, send the outbox rows that are due."""
    result = await webhook.state.bot.run_round()
    logging.getLogger("botctl.timer").info("timer round: %d swept, %d processed, %d sent%s", result.swept,
                                           result.processed, result.sent, " (past due)" if timer.past_due else "")
