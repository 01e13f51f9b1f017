"""The baseline of bench/webhook.py: a bare Starlette endpoint that reads the body and returns 200."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def ok(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"received": 1})


app = Starlette(routes=[Route("/webhook", ok, methods=["POST"])])
