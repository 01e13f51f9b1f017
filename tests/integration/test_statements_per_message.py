"""Round trips per message on PostgreSQL, counted by the server itself (pg_stat_statements).

A text message with one reply, from ingest to the reply recorded as sent, is at most 12
statements (issue 16; bench/stages.py prints the same count with each statement), and
none of them is a driver-made SAVEPOINT. A duplicate delivery is one statement.
The counts are deterministic: the bot runs without its background loops (the Functions
host's mode, where the worker that commits awaits the send).
"""

from __future__ import annotations

import asyncio

import pytest

from bot_core.app import Bot, BotSettings
from bot_core.demo import seed_demo_equipment
from bot_core.storage import open_database
from bot_core.telemetry import Telemetry
from bot_core.webhook import meta
from bot_core.webhook.payload import decode_webhook
from migrations.runner import MigrationRunner
from tests.conftest import PG_REASON
from tests.e2e.servers import PrivatePostgres

REASON = PrivatePostgres.unavailable_reason() or PG_REASON
pytestmark = pytest.mark.skipif(REASON is not None, reason=str(REASON))

REPORT = "mi refri 4001234 no enfría"  # the demo equipment, one reply: bench/stages.py's message


@pytest.fixture(scope="module")
def cluster():
    import pyodbc

    pg = PrivatePostgres().init()
    pg.start("shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=all",
             "pg_stat_statements.track_utility=on")
    try:
        admin = pyodbc.connect(f"DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT={pg.port};DATABASE=postgres;"
                               "UID=postgres;", autocommit=True)
        admin.cursor().execute("CREATE EXTENSION pg_stat_statements")
        admin.cursor().execute("CREATE DATABASE counted")
        yield admin, f"postgresql://postgres@127.0.0.1:{pg.port}/counted"
        admin.close()
    finally:
        pg.destroy()


def statements(admin) -> list[tuple[str, int]]:
    cur = admin.cursor()
    cur.execute("SELECT s.query, s.calls FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                "WHERE d.datname = 'counted' ORDER BY s.calls DESC")
    return [(" ".join(q.split()), int(c)) for q, c in cur.fetchall()]


def delivery(phone: str, wamid: str, text: str = REPORT):
    return decode_webhook(meta.envelope([meta.text_message(phone, text, wamid=wamid)])).messages


def test_a_text_message_with_one_reply_is_at_most_twelve_statements_and_a_duplicate_one(cluster):
    admin, url = cluster
    db = open_database(url)
    MigrationRunner(db).up()
    seed_demo_equipment(db)
    # One database thread: the warm-up opens the only connection (psqlODBC reads the catalog
    # once per connection and statement shape), so the counted message pays none of that.
    bot = Bot(db, BotSettings(app_secret="s", verify_token="t", db_threads=1), Telemetry(b"k"), background=False)

    async def scenario():
        # Warm-up: the connection's own setup statements (SET, catalog reads) happen once.
        assert await bot.ingest(delivery("5215550001000", "wamid.W0"), []) == (1, 0)
        admin.cursor().execute("SELECT pg_stat_statements_reset()")
        assert await bot.ingest(delivery("5215550001001", "wamid.W1"), []) == (1, 0)
        fresh = statements(admin)
        admin.cursor().execute("SELECT pg_stat_statements_reset()")
        assert await bot.ingest(delivery("5215550001001", "wamid.W1"), []) == (0, 1)
        duplicate = statements(admin)
        await bot.stop()
        return fresh, duplicate

    fresh, duplicate = asyncio.run(scenario())
    total = sum(calls for _, calls in fresh)
    listing = "\n".join(f"{calls} {query[:120]}" for query, calls in fresh)
    assert total <= 12, f"{total} statements:\n{listing}"
    assert not [q for q, _ in fresh if q.upper().startswith(("SAVEPOINT", "RELEASE", "DEALLOCATE"))], listing
    # The reply was sent and its result recorded within those statements.
    assert any(q.startswith("UPDATE MensajesSalientes SET Estado") for q, _ in fresh), listing
    assert sum(calls for _, calls in duplicate) == 1, duplicate
    with db.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT Estado FROM MensajesSalientes WHERE MensajeOrigenId = 'wamid.W1'")
        assert [r[0] for r in cur.fetchall()] == ["ENTREGADO"]
        conn.rollback()
