import sys
import threading
from pathlib import Path

import pytest

# Shared helpers (seeding, browser) live with the report tests.
sys.path.insert(0, str(Path(__file__).parents[1] / "farm" / "reports"))

from fixtures import farm_home, known  # noqa: E402,F401  (fixtures reused)


@pytest.fixture
def dashboard(known):  # noqa: F811 (the fixture, imported above)
    from dashboards.server import make_server

    server = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
