"""``os-trace check --config-file F``: validate a ``[profiler]`` configuration.

For deploy pipelines: the same checks ``setup()`` makes (connection string
scheme, optional packages, collector reachable, option types), printed as one
line each, with a non-zero exit when tracing would be left off.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register", "run", "check_conf"]


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
    from os_trace_plugins.export import exporters

    problems: list[str] = []
    warnings: list[str] = []
    try:
        group = getattr(conf, opts.GROUP)
        values = {o.dest: getattr(group, o.dest) for o in opts.list_opts()[0][1]}
    except Exception as exc:  # a value of the wrong type
        return [f"[profiler]: {exc}"], []
    try:
        exporters.check_connection_string(values["connection_string"], reach=reach)
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
    return problems, warnings


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
    return 0
