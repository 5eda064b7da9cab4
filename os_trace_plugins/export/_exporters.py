"""Span exporters chosen by ``[profiler] connection_string``.

=====================  ===============================================
scheme                 exporter
=====================  ===============================================
``otlp://H:P[/path]``  OTLP over HTTP/protobuf to ``http://H:P/v1/traces``
``otlp+https://H:P``   the same over TLS
``otlp+grpc://H:P``    OTLP over gRPC (the ``grpc`` extra)
``jaeger://H[:P]``     OTLP/HTTP to Jaeger's native port (4318 by default);
                       the Thrift ``opentelemetry-exporter-jaeger`` was
                       removed upstream in 2023 and is not used
``console://``         JSON lines on stdout (debugging)
``sqlite:///PATH``     the embedded span store; ``sqlite://`` alone is the
                       default store under the state directory
``messaging://``       OSProfiler's default: the embedded store is used
=====================  ===============================================

Bad values raise :class:`ConfigError`, whose message names the option and
what is accepted: ``setup()`` logs it and leaves tracing off,
``os-trace check`` prints it and exits non-zero.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.sdk.trace.export import SpanExporter

__all__ = [
    "ConfigError",
    "Unreachable",
    "Target",
    "ACCEPTED",
    "build_exporter",
    "check_connection_string",
    "default_store_path",
    "parse_connection_string",
    "probe",
]

LOG = logging.getLogger(__name__)

ACCEPTED = ("otlp://HOST:PORT, otlp+https://HOST:PORT, otlp+grpc://HOST:PORT, "
            "jaeger://HOST[:PORT], console://, sqlite:///PATH (or sqlite:// for "
            "the default store)")

_JAEGER_OTLP_HTTP_PORT = 4318
_OTLP_HTTP_PORT = 4318
_OTLP_GRPC_PORT = 4317


class ConfigError(ValueError):
    """A ``[profiler]`` value that cannot be used; the message says why."""


class Unreachable(ConfigError):
    """The collector does not accept connections *now*: not a configuration
    error (``setup()`` keeps tracing on and the exporter retries; ``os-trace
    check`` warns)."""


@dataclass(frozen=True)
class Target:
    """A parsed connection string."""

    kind: str  # otlp-http, otlp-grpc, console, sqlite
    endpoint: str = ""  # URL for otlp-*, file path for sqlite
    host: str = ""
    port: int = 0


def default_store_path() -> str:
    """The embedded store of a fresh install: ``$OS_TRACE_STATE_DIR/spans.db``.

    Falls back to ``$XDG_STATE_HOME/os-trace`` then ``~/.local/state/os-trace``.
    The directory is created by the store on first use.
    """
    base = os.environ.get("OS_TRACE_STATE_DIR")
    if not base:
        xdg = os.environ.get("XDG_STATE_HOME") or os.path.join(
            os.path.expanduser("~"), ".local", "state")
        base = os.path.join(xdg, "os-trace")
    return os.path.join(base, "spans.db")


def _bad(value: str, why: str) -> ConfigError:
    return ConfigError(
        f"[profiler] connection_string = {value!r}: {why}; accepted: {ACCEPTED}")


def parse_connection_string(value: str | None) -> Target:
    """Parse and validate ``value``; raise :class:`ConfigError` when unusable."""
    value = (value or "").strip()
    if not value:
        raise _bad(value, "empty")
    try:
        parts = urlsplit(value)
        port_text = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise _bad(value, f"not a URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme == "messaging":
        LOG.info("[profiler] connection_string %r is OSProfiler's notifier backend; "
                 "os_trace_plugins writes to the embedded store %s instead",
                 value, default_store_path())
        return Target("sqlite", default_store_path())
    if scheme == "sqlite":
        # SQLAlchemy's convention: sqlite:///relative.db, sqlite:////abs/path.db
        if parts.netloc or "://" not in value:
            raise _bad(value, "a sqlite URL has no host: use sqlite:///relative/path "
                              "or sqlite:////absolute/path")
        rest = value.split("://", 1)[1]
        path = os.path.expanduser(rest[1:]) if rest.startswith("/") else rest
        return Target("sqlite", path or default_store_path())
    if scheme == "console":
        return Target("console")
    if scheme in ("otlp", "otlp+http", "otlp+https", "otlp+grpc", "jaeger"):
        host = parts.hostname
        if not host:
            raise _bad(value, "no host")
        if scheme == "otlp+grpc":
            port = port_text or _OTLP_GRPC_PORT
            return Target("otlp-grpc", f"{host}:{port}", host, port)
        if scheme == "jaeger":
            port = port_text or _JAEGER_OTLP_HTTP_PORT
            if port in (6831, 6832, 14268, 14250):
                raise _bad(value, f"port {port} is a legacy Jaeger Thrift/gRPC port; "
                                  "Jaeger takes OTLP on 4318 (HTTP) and 4317 (gRPC)")
        else:
            port = port_text or _OTLP_HTTP_PORT
        proto = "https" if scheme == "otlp+https" else "http"
        path = parts.path if parts.path not in ("", "/") else "/v1/traces"
        h = f"[{host}]" if ":" in host else host
        return Target("otlp-http", f"{proto}://{h}:{port}{path}", host, port)
    raise _bad(value, f"unknown scheme {parts.scheme!r}" if scheme else "no scheme")


def probe(target: Target, timeout: float = 1.0) -> None:
    """Check that a network collector accepts TCP connections; Unreachable if not."""
    if target.kind not in ("otlp-http", "otlp-grpc"):
        return
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout):
            pass
    except OSError as exc:
        raise Unreachable(
            f"[profiler] connection_string: collector {target.host}:{target.port} "
            f"is unreachable now ({exc.strerror or exc}); spans are exported once it "
            f"is back: start the collector or fix the address") from None


def check_connection_string(value: str | None, reach: bool = True) -> Target:
    """Validate ``value`` (and reach the collector); ConfigError when unusable,
    :class:`Unreachable` (a subclass) when only the reach failed."""
    target = parse_connection_string(value)
    if target.kind == "otlp-grpc":
        _import_grpc_exporter(value or "")
    if target.kind == "sqlite":
        _import_store(value or "")
    if reach:
        probe(target)
    return target


def _import_grpc_exporter(value: str) -> Any:
    try:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter,
        )
    except ImportError:
        raise _bad(value, "the gRPC exporter is not installed (pip install "
                          "'os_trace_plugins[grpc]'), or use otlp://HOST:4318") from None
    return OTLPSpanExporter


def _import_store(value: str) -> Any:
    try:
        from os_trace_plugins.store._exporter import SQLiteSpanExporter
    except ImportError as exc:
        raise _bad(value, f"the embedded store cannot be loaded ({exc})") from None
    return SQLiteSpanExporter


def build_exporter(value: str | None, headers: dict[str, str] | None = None,
                   timeout: float = 10.0, store_options: dict[str, Any] | None = None,
                   ) -> SpanExporter:
    """The exporter for ``value``; :class:`ConfigError` when it cannot be built."""
    target = parse_connection_string(value)
    if target.kind == "otlp-http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HTTPExporter,
        )
        return HTTPExporter(endpoint=target.endpoint, headers=dict(headers or {}),
                            timeout=timeout)
    if target.kind == "otlp-grpc":
        exporter_cls = _import_grpc_exporter(value or "")
        return exporter_cls(endpoint=target.endpoint, insecure=True,  # type: ignore[no-any-return]
                            headers=dict(headers or {}), timeout=timeout)
    if target.kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter
        return ConsoleSpanExporter()
    store_cls = _import_store(value or "")
    return store_cls(target.endpoint, **(store_options or {}))  # type: ignore[no-any-return]
