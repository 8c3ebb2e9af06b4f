"""A broker over rediss:// with Redis AUTH: a real TLS redis-server with a
test CA. The farm verifies the server certificate and refuses to turn the
check off."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from farm.errors import UserError
from tests.integration import farmdb
from tests.integration.conftest import RedisServer, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]
PASSWORD = "s3cret-farm"


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca_and_server_cert(directory, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-ca.key", "-out",
             f"{name}-ca.pem", "-days", "1", "-subj", f"/CN={name} test CA", cwd=directory)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", "/CN=127.0.0.1", cwd=directory)
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{name}-ca.pem", "-CAkey", f"{name}-ca.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "1", "-extfile", "san.ext", cwd=directory)


@pytest.fixture
def tls_redis(tmp_path):
    if not shutil.which("redis-server") or not shutil.which("openssl"):
        pytest.skip("needs redis-server and openssl")
    certs = tmp_path / "certs"
    certs.mkdir()
    _ca_and_server_cert(certs, "farm")
    _ca_and_server_cert(certs, "other")  # a CA that did not sign the server
    server = RedisServer(tmp_path / "redis-tls")
    server.extra = ("--port", "0", "--tls-port", str(server.port), "--tls-cert-file", str(certs / "farm.pem"),
                    "--tls-key-file", str(certs / "farm.key"), "--tls-ca-cert-file", str(certs / "farm-ca.pem"),
                    "--tls-auth-clients", "no", "--requirepass", PASSWORD)
    # RedisServer.start passes --port first; the later --port 0 turns plain TCP off.
    server.start()
    yield server, certs
    server.stop()


def _connects(url: str) -> bool:
    from farm.queue import make_app

    app = make_app(url)  # configuration errors raise here, not below
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=5)
            connection.default_channel.client.ping()
        return True
    except Exception:
        return False


def test_rediss_broker_with_auth_runs_jobs(tls_redis, pg_url, tiny_model, farm_factory, tmp_path, monkeypatch):
    server, certs = tls_redis
    url = f"rediss://:{PASSWORD}@127.0.0.1:{server.port}/0"
    monkeypatch.setenv("FARM_BROKER_CA", str(certs / "other-ca.pem"))
    assert not _connects(url)  # a certificate from the wrong CA is refused
    monkeypatch.setenv("FARM_BROKER_CA", str(certs / "farm-ca.pem"))
    assert not _connects(f"rediss://:wrong@127.0.0.1:{server.port}/0")  # AUTH is enforced
    assert _connects(url)
    with pytest.raises(UserError, match="certificate checks"):
        _connects(url + "?ssl_cert_reqs=none")
    farm = farm_factory({"FARM_DB_URL": pg_url, "FARM_BROKER_URL": url,
                         "FARM_BROKER_CA": str(certs / "farm-ca.pem"),
                         "FARM_STORE_URL": str(tmp_path / "shared-artifacts")})
    farm.start_worker("a")
    sweep = farm.submit(farm.write_spec(tiny_model, 2))
    wait_for(lambda: farmdb.finished(sweep), 90, what="the sweep over TLS")
    assert farmdb.statuses(sweep) == {"done": 2}
