"""``os-trace check --config-file F``: validate a ``[profiler]`` configuration.

For deploy pipelines: the same checks ``setup()`` makes (connection string
scheme, optional packages, collector reachable, option types), printed as one
line each, with a non-zero exit when tracing would be left off.  A collector
that is unreachable now is a warning: tracing stays on and spans are exported
once it is back.  It also
warns about each clash it can detect with what else is installed or set in
its environment (run it in the service's environment: same venv, same
``OTEL_*``): OSProfiler initialized from the same section, the third-party
instrumentations of the same libraries, ``OTEL_*`` values that take
precedence over ``[profiler]`` (see docs/zero-code.md).  Warnings never
change the exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

__all__ = ["register", "run", "check_conf", "clash_warnings", "sampling_report"]

#: peer distribution -> (its opentelemetry_instrumentor name, what doubles)
_PEERS = {
    "opentelemetry-instrumentation-sqlalchemy": ("sqlalchemy", "SQL statement"),
    "opentelemetry-instrumentation-oslo-messaging": ("oslo_messaging",
                                                     "RPC call and notification"),
}


def register(sub: Any) -> None:
    p = sub.add_parser("check", help="validate a [profiler] configuration")
    p.add_argument("--config-file", action="append", default=[], metavar="FILE",
                   help="configuration file (repeatable, as for the service)")
    p.add_argument("--config-dir", action="append", default=[], metavar="DIR")
    p.add_argument("--no-connect", action="store_true",
                   help="do not try to reach the collector")
    p.set_defaults(func=run)


def check_conf(conf: Any, reach: bool = True) -> tuple[list[str], list[str]]:
    """(errors, warnings) of the ``[profiler]`` group of a parsed ``conf``."""
    from os_trace_plugins import opts
    from os_trace_plugins.export import _exporters as exporters

    problems: list[str] = []
    warnings: list[str] = []
    try:
        group = getattr(conf, opts.GROUP)
        values = {o.dest: getattr(group, o.dest) for o in opts.list_opts()[0][1]}
    except Exception as exc:  # a value of the wrong type
        return [f"[profiler]: {exc}"], []
    try:
        exporters.check_connection_string(values["connection_string"], reach=reach)
    except exporters.Unreachable as exc:  # setup() keeps tracing on: not a failure
        warnings.append(str(exc))
    except exporters.ConfigError as exc:
        problems.append(str(exc))
    raw = values.get("hmac_keys") or ""
    keys = raw.split(",") if raw else []
    if any(k != k.strip() or not k.strip() for k in keys):
        warnings.append("[profiler] hmac_keys: empty entries are ignored and spaces "
                        "around a key are stripped")
    if "SECRET_KEY" in (k.strip() for k in keys):
        warnings.append("[profiler] hmac_keys: OSProfiler's default SECRET_KEY is "
                        "public knowledge and is never trusted")
    warnings.extend(sampling_report(values, reach)[0])
    if values.get("enabled"):
        warnings.extend(clash_warnings(conf, values))
    return problems, warnings


def sampling_report(values: Mapping[str, Any], reach: bool = True) -> tuple[list[str], str]:
    """(warnings, one summary line) about ``sampler`` and its endpoint.

    A sampler that cannot reach its endpoint never turns tracing off (the
    service samples at ``sampling_rate``), so these are warnings; with
    ``reach`` the endpoint is asked once, as the poller would, and the
    strategy it serves for the service is named.
    """
    rate = values.get("sampling_rate")
    if values.get("sampler") != "jaeger_remote":
        return [], f"sampling: ratio {rate}"
    from os_trace_plugins.export import _jaeger_remote, _jaeger_strategies

    endpoint = str(values.get("sampling_endpoint") or "")
    service = (values.get("service_name") or os.environ.get("OTEL_SERVICE_NAME")
               or "the service's name")
    fallback = f"sampling at sampling_rate = {rate}"
    if not endpoint:
        return [f"[profiler] sampler = jaeger_remote needs sampling_endpoint; {fallback}"], \
            f"sampling: ratio {rate} (no sampling_endpoint)"
    try:
        _jaeger_remote.check_endpoint(endpoint)
    except ValueError as exc:
        return [f"[profiler] sampling_endpoint: {exc}; {fallback}"], f"sampling: ratio {rate}"
    summary = f"sampling: jaeger_remote from {endpoint} (fallback sampling_rate = {rate})"
    if not reach:
        return [], summary
    try:
        spec = _jaeger_strategies.parse(_jaeger_remote.fetch_strategy(endpoint, service))
    except Exception as exc:
        return [f"[profiler] sampling_endpoint {endpoint}: no strategy for {service} "
                f"({_jaeger_remote.describe_failure(exc)}); the service will sample at "
                f"sampling_rate = {rate} until it answers"], summary
    return [], f"{summary}: serves {_jaeger_strategies.describe(spec)} for {service}"


def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def clash_warnings(conf: Any, values: Mapping[str, Any],
                   env: Mapping[str, str] | None = None,
                   installed: Callable[[str], bool] = _installed) -> list[str]:
    """One line per clash detectable from ``conf``, the environment and the
    installed distributions."""
    env = os.environ if env is None else env
    out: list[str] = []
    scheme = str(values.get("connection_string") or "").split("://", 1)[0].lower()
    if installed("osprofiler"):
        if scheme.startswith(("otlp", "jaeger")):
            out.append("OSProfiler is installed and reads the same connection_string: a "
                       "service that calls osprofiler.initializer.init_from_conf before "
                       "os_trace_plugins.setup() adds OSProfiler's own exporter, and "
                       "every span is exported twice. Start the service under "
                       "opentelemetry-instrument (ours keep OSProfiler quiet) or call "
                       "setup() first")
        elif scheme == "sqlite":
            out.append("OSProfiler is installed and has no sqlite driver: a service "
                       "that calls init_from_conf before os_trace_plugins.setup() "
                       "logs an ERROR with a traceback at every start; start it under "
                       "opentelemetry-instrument or call setup() first")
    sections = set(_sections(conf))
    for section in ("profiler_otlp", "profiler_jaeger"):
        if section in sections:
            out.append(f"[{section}] is OSProfiler's own section; os_trace_plugins "
                       f"ignores it (connection_string, OTEL_* decide)")
    disabled = {x.strip() for x in env.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS",
                                           "").split(",")}
    for dist, (name, what) in _PEERS.items():
        if installed(dist) and name not in disabled and "*" not in disabled:
            out.append(f"{dist} is installed: under opentelemetry-instrument every "
                       f"{what} gets a second span from it; add {name} to "
                       f"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS")
    if installed("opentelemetry-instrumentation-oslo-service"):
        out.append("opentelemetry-instrumentation-oslo-service is installed: under "
                   "opentelemetry-instrument it selects oslo.service's backend before "
                   "the service does (threading unless OTEL_PYTHON_OSLO_SERVICE_BACKEND "
                   "says eventlet), and imports eventlet; an eventlet service then "
                   "fails with BackendAlreadySelected")
    out.extend(_otel_warnings(values, env, installed))
    return out


def _otel_warnings(values: Mapping[str, Any], env: Mapping[str, str],
                   installed: Callable[[str], bool]) -> list[str]:
    """Where OTEL_* take precedence over [profiler] under opentelemetry-instrument."""
    if not installed("opentelemetry-distro"):
        return []  # no SDK configurator: setup() builds the provider from [profiler]
    out: list[str] = []
    exporter = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if exporter != "none":
        out.append(f"OTEL_TRACES_EXPORTER={exporter}: under opentelemetry-instrument "
                   f"spans also go there besides connection_string; set "
                   f"OTEL_TRACES_EXPORTER=none to export only where [profiler] says")
    sampler = env.get("OTEL_TRACES_SAMPLER", "")
    if float(values.get("sampling_rate", 1.0)) != 1.0 and sampler != "os_trace_plugins":
        out.append(f"[profiler] sampling_rate = {values.get('sampling_rate')} is not "
                   f"applied under opentelemetry-instrument unless "
                   f"OTEL_TRACES_SAMPLER=os_trace_plugins (now {sampler or 'unset'})")
    elif values.get("sampler") == "jaeger_remote" and sampler != "os_trace_plugins":
        out.append(f"[profiler] sampler = jaeger_remote is not applied under "
                   f"opentelemetry-instrument unless OTEL_TRACES_SAMPLER=os_trace_plugins "
                   f"(now {sampler or 'unset'})")
    return out


def _sections(conf: Any) -> list[str]:
    try:
        return list(conf.list_all_sections())
    except Exception:  # pragma: no cover - a ConfigOpts not parsed from files
        return []


def run(args: argparse.Namespace) -> int:
    from oslo_config import cfg

    from os_trace_plugins import opts

    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    try:
        conf(args=[], project="os-trace", default_config_files=args.config_file,
             default_config_dirs=args.config_dir, use_env=False)
    except (cfg.Error, OSError) as exc:
        print(f"os-trace check: {exc}", file=sys.stderr)
        return 1
    problems, warnings = check_conf(conf, reach=not args.no_connect)
    for line in warnings:
        print(f"os-trace check: warning: {line}", file=sys.stderr)
    for line in problems:
        print(f"os-trace check: {line}", file=sys.stderr)
    if problems:
        return 1
    group = conf.profiler
    state = "on" if group.enabled else "off ([profiler] enabled = false)"
    print(f"os-trace check: OK: tracing {state}, exporting to {group.connection_string}")
    values = {o.dest: getattr(group, o.dest) for o in opts.list_opts()[0][1]}
    print(f"os-trace check: {sampling_report(values, reach=not args.no_connect)[1]}")
    return 0
