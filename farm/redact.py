"""Credential masking: the one function every message and log line goes
through before a person can see it.

Two layers, because error text is not always a well-formed URL:

1. any ``scheme://user:SECRET@`` in the text (even a URL no parser accepts,
   such as ``postgresql://farm:pw@host:notaport/farm`` or ``redis://:pw@[::1``)
   has SECRET replaced by ``***``;
2. the secrets the farm is configured with (the passwords inside
   FARM_DB_URL / FARM_BROKER_URL / FARM_STORE_URL / S3 endpoints, and
   password or token variables) are replaced wherever they appear, also
   percent-decoded, since drivers sometimes echo them without the URL around.
"""

from __future__ import annotations

import logging
import os
import re
import traceback
from urllib.parse import unquote

MASK = "***"
# The secret runs to the last '@' of the whitespace-free run (passwords with a
# raw '@' are masked whole; over-masking a host is the safe side).
_URL_SECRET = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*:)(?P<secret>[^\s'\"]+)@")
URL_VARIABLES = ("FARM_DB_URL", "FARM_BROKER_URL", "FARM_STORE_URL", "FARM_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL")
SECRET_VARIABLES = ("FARM_BROKER_PASSWORD", "FARM_DASHBOARD_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                    "PGPASSWORD", "REDISCLI_AUTH")
_MIN_LITERAL = 6  # shorter secrets are only masked inside URLs (a 1-letter one would blank every 'a')


def url_password(url: str) -> str | None:
    """The password of a URL, read leniently (no port or host parsing)."""
    _, sep, rest = url.partition("://")
    if not sep:
        return None
    userinfo, at, _ = rest.rpartition("@")
    if not at:
        return None
    _, colon, password = userinfo.partition(":")
    return password if colon and password else None


def configured_secrets(environ=None) -> set[str]:
    environ = os.environ if environ is None else environ
    found = {url_password(environ.get(name) or "") for name in URL_VARIABLES}
    found |= {environ.get(name) for name in SECRET_VARIABLES}
    secrets = {s for s in found if s}
    return secrets | {unquote(s) for s in secrets}


def mask(text: object) -> str:
    """``text`` with every credential replaced by ``***``."""
    text = _URL_SECRET.sub(lambda m: m.group("head") + MASK + "@", str(text))
    for secret in sorted(configured_secrets(), key=len, reverse=True):
        if len(secret) >= _MIN_LITERAL:
            text = text.replace(secret, MASK)
    return text


def masked_traceback(exc: BaseException) -> str:
    return mask("".join(traceback.format_exception(exc)))


def install_log_masking() -> None:
    """Mask every log record of this process (all loggers, all handlers):
    the message and its formatted traceback are masked when the record is
    made, so no handler or formatter ever sees a secret."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "masks_credentials", False):
        return

    def masking_factory(*args, **kwargs):
        record = factory(*args, **kwargs)
        try:
            # Masked, and terminal controls escaped: a log line quoting a model's node name or a sweep name
            # goes to a terminal too (farm.terminal).
            record.msg, record.args = printable(mask(record.getMessage()), keep_newlines=True), None
        except Exception:  # a bad format string: leave it to logging's own error report
            return record
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = printable(masked_traceback(record.exc_info[1]).rstrip("\n"), keep_newlines=True)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return record

    from farm.terminal import printable

    masking_factory.masks_credentials = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(masking_factory)
