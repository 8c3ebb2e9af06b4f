"""Credentials never reach a person: the masking function itself, log
records (message and traceback), internal-error tracebacks of the CLI,
and worker processes."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from farm.redact import install_log_masking, mask, url_password

SECRET = "LeakMe123"


@pytest.mark.parametrize("text, expected", [
    (f"postgresql+psycopg://farm:{SECRET}@127.0.0.1:notaport/farm", "postgresql+psycopg://farm:***@127.0.0.1:notaport/farm"),
    (f"postgresql+psycopg://farm:{SECRET}@[::1/farm", "postgresql+psycopg://farm:***@[::1/farm"),
    (f"redis://:{SECRET}@[::1", "redis://:***@[::1"),
    (f"rediss://user:{SECRET}@redis:6379/0?ssl_cert_reqs=required", "rediss://user:***@redis:6379/0?ssl_cert_reqs=required"),
    (f"FARM_DB_URL 'mysql://u:{SECRET}@h/db' is bad", "FARM_DB_URL 'mysql://u:***@h/db' is bad"),
    (f'url="amqp://guest:{SECRET}@rabbit//"', 'url="amqp://guest:***@rabbit//"'),
    ("redis://u:p%40ss%3Aword@h:1/0", "redis://u:***@h:1/0"),  # percent-encoded
    ("redis://u:p@ss@h:1/0", "redis://u:***@h:1/0"),  # a raw '@' in the password: masked whole
    ("s3://AKIA:wJalrXUtnFEMI@bucket/prefix", "s3://AKIA:***@bucket/prefix"),
    ("two: redis://:aaaaaa@h/0 and postgresql://x:bbbbbb@h/db", "two: redis://:***@h/0 and postgresql://x:***@h/db"),
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),  # no credentials: untouched
    ("sqlite:////tmp/a:b/farm.db", "sqlite:////tmp/a:b/farm.db"),
    ("mail me at a@b.c: 12:30", "mail me at a@b.c: 12:30"),
])
def test_credentials_in_urls_are_masked(text, expected):
    assert mask(text) == expected


def test_configured_secrets_are_masked_without_their_url(monkeypatch):
    monkeypatch.setenv("FARM_DB_URL", f"postgresql+psycopg://farm:{SECRET}@db:notaport/farm")
    monkeypatch.setenv("FARM_BROKER_PASSWORD", "broker-pass-77")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG")
    monkeypatch.setenv("FARM_STORE_URL", "s3://bucket/x")
    text = f"auth failed for {SECRET}; AUTH broker-pass-77; signature wJalrXUtnFEMI/K7MDENG; Leak%4De123"
    assert mask(text) == "auth failed for ***; AUTH ***; signature ***; Leak%4De123"
    monkeypatch.setenv("FARM_DB_URL", "postgresql://farm:p%40ss-word@db/farm")
    assert mask("the driver said p@ss-word and p%40ss-word") == "the driver said *** and ***"


def test_url_password_reads_urls_no_parser_accepts():
    assert url_password(f"postgresql://farm:{SECRET}@h:notaport/x") == SECRET
    assert url_password(f"redis://:{SECRET}@[::1") == SECRET
    assert url_password("redis://h:6379/0") is None and url_password("garbage") is None


def test_log_records_are_masked_message_and_traceback(caplog):
    install_log_masking()
    log = logging.getLogger("farm.test")
    with caplog.at_level(logging.INFO, logger="farm.test"):
        log.info("connecting to %s", f"redis://:{SECRET}@broker:6379/0")
        try:
            raise RuntimeError(f"could not open postgresql://farm:{SECRET}@db/farm")
        except RuntimeError:
            log.exception("database trouble")
    text = caplog.text
    assert "redis://:***@broker:6379/0" in text and "postgresql://farm:***@db/farm" in text
    assert "RuntimeError" in text and SECRET not in text


def test_an_internal_bug_keeps_its_traceback_but_not_the_password(tmp_path):
    """A bug is not a user error (traceback kept), yet the URL in it is masked."""
    script = ("import sys, click\n"
              "from farm.cli import main\n"
              "from farm.cli.commands import cli\n"
              "@cli.command('explode')\n"
              "def explode():\n"
              f"    raise RuntimeError('lost postgresql://farm:{SECRET}@db:5432/farm')\n"
              "main(['explode'])\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr and "RuntimeError" in result.stderr
    assert "postgresql://farm:***@db:5432/farm" in result.stderr and SECRET not in result.stderr


def test_worker_processes_mask_their_errors(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "FARM_HOME": str(tmp_path / "home"),
           "FARM_DB_URL": f"postgresql+psycopg://farm:{SECRET}@127.0.0.1:notaport/farm"}
    import os

    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    result = subprocess.run([sys.executable, "-m", "workers", "discover", "--register"], capture_output=True,
                            text=True, timeout=120, env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("Error: FARM_DB_URL 'postgresql+psycopg://farm:***@127.0.0.1:notaport/farm'")
    assert SECRET not in result.stderr + result.stdout
