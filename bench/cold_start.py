"""Cold start on Azure Functions: function_app.py against a bare AsgiFunctionApp, in one run.

    python bench/cold_start.py [--runs 7]

Each measurement is a fresh Python process doing what the Functions worker does on a cold
instance: import the function app module (indexing its functions), then call its HTTP
function with the first request, through AsgiFunctionApp (whose first call also runs the
ASGI lifespan startup). Timed from the first line of the child, before any import, to the
response; the interpreter's own start is the same for both and left out.

* target: deploy/azure-functions/function_app.py on a migrated SQLite file, settings from
  the environment, the Graph API sender pointed at a fake Graph API on loopback that speaks
  HTTPS (a real handshake; its CA is found in a hashed CA directory named by SSL_CERT_DIR,
  which OpenSSL reads as it reads the system's /etc/ssl/certs on a Function App: only the
  issuer the handshake needs, bot_core/tls.py; this machine's own SSL_CERT_FILE is unset); first
  request a signed webhook with one text message, processed and its reply sent inline (the
  real first request, not a health probe). Without APPLICATIONINSIGHTS_CONNECTION_STRING:
  App Insights (azure-monitor-opentelemetry) is not loaded here, and would add its own
  import time in production;
* baseline: a bare ``AsgiFunctionApp`` around a Starlette hello-world (bench/bare_app.py's
  endpoint), first request the same POST.

Both run from compiled bytecode, as a deployment does (pip compiles every module it installs,
the bot's own wheel included): the children get a private PYTHONPYCACHEPREFIX, filled by one
unmeasured run of each. Without it, a checkout run with PYTHONDONTWRITEBYTECODE (as CI and
this machine set) would compile the bot's sources on every start, about 40 ms that no
deployed instance pays.

Prints the median of ``--runs`` of each and the ratio (target <= 2x).
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SECRET = "cold-start-secret-0123456789"
TARGET = 2.0

CHILD = r"""
import time
started, cpu_started = time.perf_counter(), time.process_time()
import asyncio, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("function_app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
import azure.functions as func
(http,) = [f for f in module.app.get_functions() if f.get_function_name() == "http_app_func"]
body = open(sys.argv[2], "rb").read()
headers = json.loads(open(sys.argv[3]).read())
# The worker's event loop lives on after a request (no asyncio.run: its teardown would also
# time the ASGI lifespan's shutdown, which a serving instance does not run).
loop = asyncio.new_event_loop()
response = loop.run_until_complete(http.get_user_function()(func.HttpRequest("POST", "http://localhost/webhook",
                                                                             headers=headers, body=body), None))
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
assert response.status_code == 200, (response.status_code, response.get_body())
print(json.dumps({"seconds": elapsed, "cpu": cpu, "body": response.get_body().decode()}), flush=True)
import os
os._exit(0)  # not a shutdown either: the app's executor threads would keep the process waiting
"""

BARE = '''
import azure.functions as func
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def ok(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"received": 1})


app = func.AsgiFunctionApp(app=Starlette(routes=[Route("/webhook", ok, methods=["POST"])]),
                           http_auth_level=func.AuthLevel.ANONYMOUS)
'''


def measure(app_file: str, body_file: str, headers_file: str, env: dict[str, str], cwd: str) -> tuple[float, float]:
    """Wall and CPU seconds of one cold start (the CPU figure shrugs off a busy machine)."""
    out = subprocess.run([sys.executable, "-c", CHILD, app_file, body_file, headers_file], env=env, cwd=cwd,
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["seconds"], result["cpu"]


def cold_starts(tmp: str, graph_url: str, ca_dir: str, runs: int) -> tuple[dict, dict]:
    """Wall and CPU seconds of ``runs`` cold starts of each app, alternating which goes first."""
    from bot_core.storage import open_database
    from bot_core.webhook import meta
    from migrations.runner import MigrationRunner

    bare_file = os.path.join(tmp, "bare_function_app.py")
    with open(bare_file, "w") as fh:
        fh.write(BARE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOTCTL_", "SSL_CERT_"))}
    env.update({"PYTHONPATH": ROOT, "BOTCTL_APP_SECRET": SECRET, "BOTCTL_VERIFY_TOKEN": "cold-start",
                "BOTCTL_HASH_KEY": "c" * 32, "BOTCTL_TELEMETRY_FILE": os.path.join(tmp, "t.jsonl"),
                "BOTCTL_WHATSAPP_TOKEN": "cold-start-token", "BOTCTL_WHATSAPP_PHONE_NUMBER_ID": "1234567890",
                "BOTCTL_WHATSAPP_BASE_URL": graph_url, "SSL_CERT_DIR": ca_dir})
    env.pop("APPLICATIONINSIGHTS_CONNECTION_STRING", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
    target_file = os.path.join(ROOT, "deploy", "azure-functions", "function_app.py")
    times: dict[str, list[float]] = {"bare AsgiFunctionApp": [], "function_app.py": []}
    cpu: dict[str, list[float]] = {name: [] for name in times}
    for run in range(-1, runs):  # run -1 compiles the bytecode of both and is not counted
        db_url = f"sqlite:///{tmp}/cold-{run}.db"  # a fresh database each time: nothing cached
        MigrationRunner(open_database(db_url)).up()
        body, headers = meta.signed_body(meta.envelope([meta.text_message(
            "5215550009999", "hola", wamid=f"wamid.COLD{run}")]), SECRET)
        body_file, headers_file = os.path.join(tmp, "body"), os.path.join(tmp, "headers.json")
        with open(body_file, "wb") as fh:
            fh.write(body)
        with open(headers_file, "w") as fh:
            json.dump(headers, fh)
        # Alternate which goes first, so neither always meets a warmer page cache.
        pair = [("bare AsgiFunctionApp", bare_file), ("function_app.py", target_file)]
        for name, app_file in (pair if run % 2 == 0 else pair[::-1]):
            seconds, cpu_seconds = measure(app_file, body_file, headers_file, {**env, "BOTCTL_DB": db_url}, tmp)
            if run >= 0:
                times[name].append(seconds)
                cpu[name].append(cpu_seconds)
    return times, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    from tests.support.fake_http import FakeGraph
    from tests.support.tls import hashed_ca_dir, self_signed

    with tempfile.TemporaryDirectory() as tmp:
        cert, key = self_signed(Path(tmp))
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_tls.load_cert_chain(cert, key)
        with FakeGraph(tls=server_tls) as graph:
            times, cpu = cold_starts(tmp, graph.url, hashed_ca_dir(cert, Path(tmp) / "ca"), args.runs)
            replies = graph.sent - 1
    if replies < args.runs:
        raise RuntimeError(f"only {replies} of {args.runs} first requests sent their reply")
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"\ncold start (import + first request), median of {args.runs} fresh processes; "
          f"machine load {os.getloadavg()[0]:.1f}")
    for name, values in times.items():
        print(f"  {name:<22} {medians[name] * 1000:8.1f} ms   (min {min(values) * 1000:.1f}, "
              f"max {max(values) * 1000:.1f})")
    cpu_ratio = statistics.median(cpu["function_app.py"]) / statistics.median(cpu["bare AsgiFunctionApp"])
    print(f"  CPU time: bare {statistics.median(cpu['bare AsgiFunctionApp']) * 1000:.1f} ms, function_app.py "
          f"{statistics.median(cpu['function_app.py']) * 1000:.1f} ms, ratio {cpu_ratio:.2f}")
    ratio = medians["function_app.py"] / medians["bare AsgiFunctionApp"]
    print(f"ratio function_app.py / bare: {ratio:.2f} (target <= {TARGET:g}): {'met' if ratio <= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
