"""The ``[profiler]`` option group.

OSProfiler's option names keep their meaning (``enabled``, ``hmac_keys``,
``trace_sqlalchemy``, ``trace_requests``, ``connection_string``) so an existing
section keeps working, and both packages can live in one process: when
OSProfiler registered its options first (nova does at import time), ours of the
same name are not registered again and its definitions are used.  Those are
immutable, so :mod:`os_trace_plugins._switches` reads their live value from the
config files itself on SIGHUP.

The switches an operator flips during an incident are ``mutable=True``: they
take effect through ``conf.mutate_config_files()`` (SIGHUP in oslo.service),
without a restart.

Each area keeps its options in its own list below; ``list_opts()`` is the
``oslo.config.opts`` entry point, so
``oslo-config-generator --namespace os_trace_plugins`` prints the section.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from typing import Any

from oslo_config import cfg

__all__ = [
    "GROUP",
    "MUTABLE_SWITCHES",
    "list_opts",
    "register_opts",
    "set_defaults",
    "foreign_opts",
]

GROUP = "profiler"

# --- base: enabling, export, sampling (OSProfiler names first) -------------
_base_opts: list[cfg.Opt] = [
    cfg.BoolOpt(
        "enabled", default=False,
        help="Enable tracing. With it off, os_trace_plugins.setup() installs "
             "nothing and every hook stays detached (OSProfiler's meaning)."),
    cfg.StrOpt(
        "connection_string", default="sqlite://",
        help="Where spans go, by scheme: otlp://HOST:PORT (OTLP over "
             "HTTP/protobuf, path /v1/traces; Jaeger, Tempo, OpenTelemetry "
             "Collector), otlp+grpc://HOST:PORT (needs the [grpc] extra), "
             "jaeger://HOST[:PORT] (OTLP/HTTP to Jaeger's native port 4318), "
             "console:// (stdout), sqlite:///PATH (the embedded span store; "
             "sqlite:// alone means the default store under the state "
             "directory). OSProfiler's messaging:// default falls back to the "
             "embedded store."),
    cfg.StrOpt(
        "service_name",
        help="service.name of the spans. Defaults to the service passed to "
             "setup(), else the program name."),
    cfg.FloatOpt(
        "sampling_rate", default=1.0, min=0.0, max=1.0, mutable=True,
        help="Fraction of new traces that are recorded (parent-based: a "
             "request that arrives with a sampled parent stays sampled). With "
             "sampler = jaeger_remote, the rate used until the endpoint first "
             "answers."),
    cfg.StrOpt(
        "sampler", default="ratio", choices=["ratio", "jaeger_remote"], mutable=True,
        help="How new traces are chosen. ratio: sampling_rate. jaeger_remote: "
             "Jaeger's remote-controlled sampling, the strategy (probabilistic, "
             "rate limiting, per operation) polled from sampling_endpoint for "
             "this service; sampling_rate applies until the endpoint first "
             "answers (docs/sampling.md). Parent-based either way, and a signed "
             "request is always recorded."),
    cfg.StrOpt(
        "sampling_endpoint", default="", mutable=True,
        help="With sampler = jaeger_remote: the HTTP URL of the sampling "
             "strategies, polled as URL?service=NAME. Jaeger agent or the "
             "OpenTelemetry Collector's jaegerremotesampling extension: "
             "http://HOST:5778/sampling; Jaeger collector: "
             "http://HOST:14268/api/sampling."),
    cfg.FloatOpt(
        "sampling_refresh_interval", default=60.0, min=0.1, mutable=True,
        help="Seconds between two polls of sampling_endpoint (jittered by "
             "a tenth either way); the poll runs on a background thread, never on the "
             "request path."),
    cfg.DictOpt(
        "otlp_headers", default={}, secret=True,
        help="Extra headers sent with every OTLP export, such as an "
             "authorization token for the collector."),
    cfg.FloatOpt(
        "export_timeout", default=10.0, min=0.1,
        help="Seconds an export to the collector may take before it is "
             "abandoned (export runs on a background thread, never on the "
             "request path)."),
    cfg.IntOpt(
        "max_queue_size", default=2048, min=1,
        help="Spans buffered for export; beyond it new spans are dropped "
             "(and counted, reported once per outage) rather than blocking "
             "the service."),
    cfg.FloatOpt(
        "shutdown_timeout", default=5.0, min=0.0,
        help="Seconds a process that exits (shutdown(), interpreter exit, an "
             "oslo.service worker leaving on SIGTERM) waits for its pending "
             "spans to be exported; spans still pending after it are dropped "
             "and counted, so an unreachable collector cannot hold an exit."),
]

# --- rpc: oslo.messaging hooks ----------------------------------------------
_rpc_opts: list[cfg.Opt] = [
    cfg.BoolOpt(
        "trace_rpc", default=True, mutable=True,
        help="Trace oslo.messaging RPC calls, casts and fanout, on both the "
             "caller and the server side."),
    cfg.BoolOpt(
        "trace_notifications", default=True, mutable=True,
        help="Trace oslo.messaging notifications (Notifier sends and "
             "notification listeners)."),
]

# --- db: SQLAlchemy listeners -------------------------------------------------
_sql_opts: list[cfg.Opt] = [
    cfg.BoolOpt(
        "trace_sqlalchemy", default=False, mutable=True,
        help="Create a span per SQL statement for every engine of the "
             "process. Voluminous: off by default, switch it on during an "
             "incident (SIGHUP applies it, no restart)."),
    cfg.BoolOpt(
        "trace_sqlalchemy_parameters", default=False, mutable=True,
        help="Record SQL parameters as db.query.parameter.<key>. They may "
             "hold personal data or secrets: off unless asked."),
    cfg.IntOpt(
        "sql_max_statement_length", default=2048, min=16, mutable=True,
        help="db.query.text is cut to this many characters."),
    cfg.BoolOpt(
        "sql_trace_on_request", default=True, mutable=True,
        help="Record SQL statements for a request whose trace carries the "
             "baggage os_trace.sql=1 (set by the API edge for a signed "
             "request that asked for it), even while trace_sqlalchemy is off."),
    cfg.BoolOpt(
        "sql_root_spans", default=False, mutable=True,
        help="Let a SQL statement run outside any trace (a periodic task) "
             "start a trace of its own. Off by default: such one-statement "
             "traces flood the backend and explain nothing."),
]

# --- drivers: vendor driver wrapper -----------------------------------------
_driver_opts: list[cfg.Opt] = [
    cfg.BoolOpt(
        "trace_drivers", default=True, mutable=True,
        help="Trace calls into wrapped vendor drivers. Off: the wrappers pass "
             "straight through."),
    cfg.ListOpt(
        "driver_namespaces", default=[],
        help="Entry-point namespaces or import-path prefixes whose drivers "
             "are wrapped automatically when loaded through stevedore or "
             "oslo_utils.importutils (for example nova.compute.drivers)."),
    cfg.BoolOpt(
        "trace_driver_arguments", default=False, mutable=True,
        help="Record driver call arguments and results (secret-looking names "
             "are masked even then)."),
    cfg.IntOpt(
        "driver_argument_max_length", default=256, min=16, mutable=True,
        help="Each recorded driver argument or result is cut to this many "
             "characters."),
    cfg.BoolOpt(
        "trace_decorated", default=True, mutable=True,
        help="Trace functions and classes decorated with "
             "os_trace_plugins.drivers.trace / trace_cls (DB API layer, "
             "managers). Off: the decorated functions pass straight through."),
    cfg.BoolOpt(
        "driver_root_spans", default=True, mutable=True,
        help="Create driver (and trace/trace_cls decorated) spans for calls "
             "made outside any trace, such as periodic tasks; each becomes a "
             "trace of its own, subject to sampling_rate. Off: such calls pass "
             "straight through and only calls inside a trace are spans "
             "(OSProfiler's behaviour)."),
    cfg.BoolOpt(
        "log_correlation", default=True,
        help="setup() adds trace_id and span_id to every log record (a "
             "filter on the logging handlers; call setup() after oslo.log "
             "built them), even while tracing is disabled, so logging_context_format_string and "
             "logging_default_format_string can show %(trace_id)s "
             "%(span_id)s (\"0\" outside a span)."),
]

# --- wsgi: API edge and outgoing HTTP ---------------------------------------
_wsgi_opts: list[cfg.Opt] = [
    cfg.BoolOpt(
        "trace_wsgi", default=True, mutable=True,
        help="Create a SERVER span for each request through the WSGI "
             "middleware."),
    cfg.BoolOpt(
        "trace_requests", default=False, mutable=True,
        help="Create CLIENT spans for outgoing HTTP calls made with the "
             "requests library and inject trace headers (OSProfiler's name)."),
    cfg.StrOpt(
        "hmac_keys", secret=True, default="",
        help="Comma-separated keys; a trace header signed with any of them is "
             "trusted (several keys allow rotation). Never sent on the wire."),
    cfg.BoolOpt(
        "trust_unsigned_traceparent", default=False, mutable=True,
        help="Continue an unsigned inbound W3C traceparent. Only behind a "
             "gateway that strips client trace headers: otherwise an "
             "anonymous client picks trace ids and forces sampling."),
    cfg.IntOpt(
        "signature_max_age", default=3600, min=0,
        help="Seconds a signed trace header stays valid (0: no limit)."),
    cfg.BoolOpt(
        "accept_osprofiler_headers", default=True, mutable=True,
        help="Trust OSProfiler's X-Trace-Info/X-Trace-HMAC headers signed with "
             "one of hmac_keys (mixed fleets during a migration). They carry no "
             "timestamp, so a captured pair can be replayed until the key "
             "changes: switch this off once every client signs with "
             "os_trace_plugins (X-OS-Trace-Signature, which expires)."),
    cfg.BoolOpt(
        "send_osprofiler_headers", default=False, mutable=True,
        help="Also sign recorded outgoing requests calls in OSProfiler's format "
             "(X-Trace-Info/X-Trace-HMAC, base_id = the trace id), so an API "
             "still running OSProfiler's middleware continues the trace during "
             "a migration. Needs hmac_keys."),
]

# --- store: embedded SQLite span store --------------------------------------
_store_opts: list[cfg.Opt] = [
    cfg.IntOpt(
        "store_max_age_hours", default=168, min=0,
        help="Traces older than this are trimmed from the embedded store "
             "(0: keep forever)."),
    cfg.IntOpt(
        "store_max_size_mb", default=512, min=0,
        help="Oldest traces are trimmed once the embedded store grows past "
             "this size (0: no limit)."),
]

_ALL: list[cfg.Opt] = (
    _base_opts + _rpc_opts + _sql_opts + _driver_opts + _wsgi_opts + _store_opts
)

#: Options read on the hot path through :data:`os_trace_plugins._switches.SWITCHES`.
MUTABLE_SWITCHES: tuple[str, ...] = tuple(o.dest for o in _ALL if o.mutable)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """The ``oslo.config.opts`` entry point."""
    return [(GROUP, list(_ALL))]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register the group on ``conf``, keeping options another package owns.

    OSProfiler registers ``enabled``, ``hmac_keys``, ``trace_sqlalchemy``,
    ``trace_requests`` and ``connection_string`` under ``[profiler]``; a second
    definition of the same name raises DuplicateOptError, so such names are
    skipped and the existing definition serves.
    """
    _osprofiler_first(conf)
    existing = _registered(conf)
    conf.register_group(cfg.OptGroup(GROUP, title="Tracing (os_trace_plugins)"))
    for opt in _ALL:
        if opt.dest in existing and existing[opt.dest] is not opt:
            continue
        conf.register_opt(opt, group=GROUP)


def _osprofiler_first(conf: cfg.ConfigOpts) -> None:
    """On the global ``cfg.CONF``, let ``osprofiler.opts`` register first.

    ``import osprofiler.opts`` registers OSProfiler's ``[profiler]`` options on
    ``cfg.CONF`` at import time and would raise DuplicateOptError into the
    service if ours of the same names were there already.  When OSProfiler is
    installed and not imported yet, it is imported here first (what the
    service's own import would do), so both import orders are safe.
    """
    if conf is not cfg.CONF or "osprofiler.opts" in sys.modules:
        return
    if importlib.util.find_spec("osprofiler") is None:
        return
    try:
        importlib.import_module("osprofiler.opts")
    except Exception as exc:  # a broken osprofiler install: ours serve alone
        logging.getLogger(__name__).debug("osprofiler.opts not importable: %s", exc)


def foreign_opts(conf: cfg.ConfigOpts) -> set[str]:
    """Names in ``[profiler]`` registered by another package, not by us."""
    ours = {id(o) for o in _ALL}
    return {name for name, opt in _registered(conf).items() if id(opt) not in ours}


def _registered(conf: cfg.ConfigOpts) -> dict[str, cfg.Opt]:
    try:
        group = conf._get_group(GROUP)
    except cfg.NoSuchGroupError:
        return {}
    return {name: info["opt"] for name, info in group._opts.items()}


def set_defaults(conf: cfg.ConfigOpts, **kwargs: Any) -> None:
    """Change option defaults, as a service does for its own deployment."""
    register_opts(conf)
    for name, value in kwargs.items():
        conf.set_default(name, value, group=GROUP)
