"""Azure Functions entry point: the same ASGI app as `botctl serve`, hosted by AsgiFunctionApp.

Settings come from the Function App's application settings (BOTCTL_DB, BOTCTL_APP_SECRET,
BOTCTL_VERIFY_TOKEN, APPLICATIONINSIGHTS_CONNECTION_STRING, ...), read by bot_core.config.
Auth level is ANONYMOUS on purpose: Meta cannot send a function key, and the
X-Hub-Signature-256 check is the authentication. See docs/azure-functions.md.
"""

import azure.functions as func

from bot_core.appinsights import configure_app_insights, instrument_asgi
from bot_core.asgi import create_app_from_config
from bot_core.config import load_config

configure_app_insights()
config = load_config()
# No pending-migrations probe here: migrations run from CI/CD with `botctl migrate up`,
# and the deployable package does not ship the migrations runner.
app = func.AsgiFunctionApp(app=instrument_asgi(create_app_from_config(config)),
                           http_auth_level=func.AuthLevel.ANONYMOUS)
