"""``os-trace list`` and ``os-trace show``: read traces from the embedded store.

::

    os-trace list [--service S] [--errors] [--min-duration MS] [--limit N]
    os-trace show TRACE_ID [--json | --html FILE | --dot FILE [--render]]
                           [--store PATH | --otlp-json FILE]

The store is ``--store PATH``, else the ``sqlite`` connection_string of
``--config-file``, else the default store
(:func:`os_trace_plugins.export._exporters.default_store_path`).  The store is
opened read-only.  Every failure is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from typing import Any

__all__ = ["register", "run_list", "run_show", "store_path", "load_trace"]


def _source_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="PATH", help="span store file (default: the "
                   "store of --config-file, else the default store)")
    p.add_argument("--config-file", action="append", default=[], metavar="FILE",
                   help="read [profiler] connection_string from this file")


def register(sub: Any) -> None:
    p = sub.add_parser("list", help="list recent traces from the span store")
    _source_opts(p)
    p.add_argument("--service", help="only traces that include this service")
    p.add_argument("--errors", action="store_true", help="only traces with an error")
    p.add_argument("--min-duration", type=float, metavar="MS",
                   help="only traces lasting at least MS milliseconds")
    p.add_argument("--limit", type=int, default=20, metavar="N",
                   help="at most N traces (default 20)")
    p.set_defaults(func=run_list)

    p = sub.add_parser("show", help="show one trace: tree, JSON, HTML or DOT")
    p.add_argument("trace_id", metavar="TRACE_ID",
                   help="trace id (or a unique prefix of at least 6 hex digits)")
    _source_opts(p)
    p.add_argument("--otlp-json", metavar="FILE",
                   help="read spans from an OTLP/JSON file instead of the store")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the trace as JSON")
    out.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    out.add_argument("--dot", metavar="FILE", help="write a Graphviz DOT file")
    p.add_argument("--render", action="store_true",
                   help="with --dot: also render FILE.svg with Graphviz")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colours in the terminal tree (default: on a tty)")
    p.set_defaults(func=run_show)


def _fail(command: str, message: object) -> int:
    from os_trace_plugins.cmd._main import one_line

    print(f"os-trace {command}: {one_line(message)}", file=sys.stderr)
    return 1


def store_path(args: argparse.Namespace) -> str:
    """--store, else the config file's sqlite connection_string, else the default."""
    from os_trace_plugins.export import _exporters as exporters

    if getattr(args, "store", None):
        return str(args.store)
    if getattr(args, "config_file", None):
        from oslo_config import cfg

        from os_trace_plugins import opts
        conf = cfg.ConfigOpts()
        opts.register_opts(conf)
        try:
            conf(args=[], project="os-trace", default_config_files=args.config_file,
                 use_env=False)
            value = conf.profiler.connection_string
        except (cfg.Error, OSError) as exc:
            raise exporters.ConfigError(str(exc)) from None
        target = exporters.parse_connection_string(value)
        if target.kind != "sqlite":
            raise exporters.ConfigError(
                f"[profiler] connection_string = {value!r} exports to a collector, "
                f"not to the embedded store: read the trace there (Jaeger, Tempo) or "
                f"pass --store PATH")
        return target.endpoint
    return exporters.default_store_path()


def _when(ns: int) -> str:
    return datetime.datetime.fromtimestamp(ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")


def run_list(args: argparse.Namespace) -> int:
    from os_trace_plugins.export._exporters import ConfigError
    from os_trace_plugins.report._text import format_ms
    from os_trace_plugins.store._reader import StoreReader
    from os_trace_plugins.store._schema import StoreError

    if args.limit < 1:
        return _fail("list", "--limit must be at least 1")
    try:
        path = store_path(args)
        with StoreReader(path) as reader:
            rows = reader.list_traces(service=args.service, errors=args.errors,
                                      min_duration_ms=args.min_duration, limit=args.limit)
    except (StoreError, ConfigError) as exc:
        return _fail("list", exc)
    if not rows:
        print(f"no matching traces in {path}", file=sys.stderr)
        return 0
    lines = [f"{'TRACE ID':32}  {'STARTED':19}  {'DURATION':>9}  {'SPANS':>5}  E  "
             f"ROOT / SERVICES"]
    for t in rows:
        mark = "!" if t.error_count else " "
        root = t.root_name if t.complete else f"{t.root_name} (root not stored)"
        lines.append(f"{t.trace_id}  {_when(t.start_ns)}  "
                     f"{format_ms(t.end_ns - t.start_ns):>9}  {t.span_count:>5}  {mark}  "
                     f"{root}  [{', '.join(t.services)}]")
    print("\n".join(lines))
    return 0


def load_trace(args: argparse.Namespace) -> Any:
    """The :class:`~os_trace_plugins.report._model.Trace` asked for."""
    from os_trace_plugins.report._model import ReportError, Trace
    from os_trace_plugins.store._reader import StoreReader

    if args.otlp_json:
        from os_trace_plugins.report._otlp_json import load_otlp_json, trace_ids
        spans = load_otlp_json(args.otlp_json)
        wanted = args.trace_id.lower()
        ids = [t for t in trace_ids(spans) if t.startswith(wanted)]
        if not ids:
            raise ReportError(f"trace {args.trace_id} is not in {args.otlp_json} "
                              f"(it holds {', '.join(trace_ids(spans)[:5])})")
        if len(ids) > 1:
            raise ReportError(f"trace id prefix {args.trace_id} is ambiguous")
        return Trace.from_dicts(s for s in spans if s["trace_id"] == ids[0])
    with StoreReader(store_path(args)) as reader:
        return Trace.from_dicts(reader.spans(args.trace_id))


def run_show(args: argparse.Namespace) -> int:
    from os_trace_plugins.export._exporters import ConfigError
    from os_trace_plugins.report._model import ReportError
    from os_trace_plugins.store._schema import StoreError

    if args.render and not args.dot:
        return _fail("show", "--render goes with --dot FILE")
    if args.otlp_json and args.store:
        return _fail("show", "give either --store or --otlp-json, not both")
    try:
        trace = load_trace(args)
        if args.json:
            from os_trace_plugins.report._json_report import render_json
            sys.stdout.write(render_json(trace))
        elif args.html:
            from os_trace_plugins.report._html import render_html
            _write(args.html, render_html(trace))
            print(f"wrote {args.html} ({len(trace.spans)} spans)")
        elif args.dot:
            from os_trace_plugins.report._dot import render_dot, render_svg
            _write(args.dot, render_dot(trace))
            print(f"wrote {args.dot}")
            if args.render:
                try:
                    print(f"wrote {render_svg(args.dot)}")
                except (RuntimeError, OSError) as exc:
                    return _fail("show", exc)
        else:
            from os_trace_plugins.report._text import render_text
            color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
            sys.stdout.write(render_text(trace, color=color))
    except (StoreError, ReportError, ConfigError) as exc:
        return _fail("show", exc)
    return 0


def _write(path: str, text: str) -> None:
    from os_trace_plugins.report._model import ReportError
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise ReportError(f"cannot write {path}: {exc.strerror or exc}") from None
