import pytest

from tests.e2e.servers import BotServer


@pytest.fixture
def serve_factory(tmp_path):
    servers: list[BotServer] = []

    def make(db_url: str, **kwargs) -> BotServer:
        server = BotServer(db_url, tmp_path, **kwargs)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()
