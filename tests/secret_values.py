"""The secret values the tests use, in one place, so the leak scan knows them.

Every HMAC key, SQL parameter value that must stay out of spans, driver
argument marked secret, URL password and query-string token a test hands to
the product comes from here.  Each value contains :data:`MARK`, a string that
occurs nowhere else, so the session-wide scan (:mod:`tests.leakscan`) checks
a span with one substring search and only looks further when the mark is
there; a value cut short (a 256-character bound) is still caught by its mark.

Not named ``tests/secrets.py``: a script run from ``tests/`` would then
shadow the standard library's ``secrets`` (the product imports it).

Values must stay valid where they are used: URL-safe (a password in
``rabbit://user:PW@host``), a plain SQL string, an HTTP header token.
"""

from __future__ import annotations

__all__ = [
    "MARK", "SECRETS", "secret", "HMAC_KEY", "HMAC_KEY_OLD", "PASTE_KEY",
    "SQL_PARAMETER", "DRIVER_PASSWORD", "DRIVER_TOKEN", "URL_PASSWORD",
    "DB_PASSWORD", "QUERY_TOKEN", "TEMP_URL_SIG", "OTLP_TOKEN",
]

#: the substring every registered secret contains (and nothing else does)
MARK = "xK9cnry"

#: name -> value of every registered secret
SECRETS: dict[str, str] = {}


def secret(name: str) -> str:
    """A new registered secret value named ``name`` (URL- and header-safe)."""
    if name in SECRETS:
        return SECRETS[name]
    value = f"{MARK}-{name}-7Qf3"
    SECRETS[name] = value
    return value


HMAC_KEY = secret("hmac-key")
HMAC_KEY_OLD = secret("hmac-key-old")
PASTE_KEY = secret("paste-hmac-key")
SQL_PARAMETER = secret("sql-parameter")
DRIVER_PASSWORD = secret("driver-admin-password")
DRIVER_TOKEN = secret("driver-auth-token")
URL_PASSWORD = secret("transport-url-password")
DB_PASSWORD = secret("database-url-password")
QUERY_TOKEN = secret("query-token")
TEMP_URL_SIG = secret("temp-url-sig")
OTLP_TOKEN = secret("otlp-authorization")
