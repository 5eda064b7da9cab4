"""``os-trace demo``: run the OpenStack-shaped demo and show one of its traces.

Services as processes over a broker (``--transport-url``, or RabbitMQ found
on 127.0.0.1:5672), else as threads over ``fake://``; SQLite unless
``--db-url``.  Prints the trace tree of the SQL-traced request and writes its
HTML report.  See :mod:`os_trace_plugins.demo._runner`.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Any

from os_trace_plugins.drivers._masking import mask_text

__all__ = ["register", "run", "default_demo_store"]


def default_demo_store() -> str:
    from os_trace_plugins.export._exporters import default_store_path
    return os.path.join(os.path.dirname(default_store_path()), "demo.db")


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run a small traced OpenStack-shaped system")
    p.add_argument("--transport-url", metavar="URL",
                   help="oslo.messaging transport (e.g. rabbit://guest:guest@127.0.0.1:"
                        "5672/): services run as separate processes")
    p.add_argument("--in-process", action="store_true",
                   help="run the services as threads over fake:// even if a broker "
                        "is found")
    p.add_argument("--db-url", metavar="URL",
                   help="SQLAlchemy URL of the conductor's database (default: a "
                        "temporary SQLite file)")
    p.add_argument("--store", metavar="PATH",
                   help="span store to write (default: demo.db in the state directory)")
    p.add_argument("--html", metavar="FILE",
                   help="where to write the HTML report (default: next to the store)")
    p.add_argument("--requests", type=int, default=3, metavar="N",
                   help="how many API requests to send (default 3)")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    p.set_defaults(func=run)


def quiet_warnings() -> None:
    """oslo libraries import eventlet, which warns on import; not the demo's business."""
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")


def run(args: argparse.Namespace) -> int:
    quiet_warnings()
    from os_trace_plugins.demo._runner import DemoError, DemoOptions, run_demo
    from os_trace_plugins.store._schema import StoreError

    if args.transport_url and args.in_process:
        print("os-trace demo: give either --transport-url or --in-process", file=sys.stderr)
        return 2
    if args.requests < 1:
        print("os-trace demo: --requests must be at least 1", file=sys.stderr)
        return 2
    store = os.path.abspath(args.store or default_demo_store())
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    try:
        result = run_demo(DemoOptions(store=store, html=args.html,
                                      transport_url=args.transport_url,
                                      db_url=args.db_url, in_process=args.in_process,
                                      requests=args.requests, color=color))
    except (DemoError, StoreError) as exc:
        print(f"os-trace demo: {exc}", file=sys.stderr)
        return 1
    where = ("separate processes over " + mask_text(result.transport_url)
             if result.mode == "processes" else
             "threads of one process over fake:// ("
             + ("--in-process" if args.in_process else "no broker found") + ")")
    print()
    print(f"Services ran as {where}.")
    for note in result.notes:
        print(f"Note: {note}")
    print(f"HTML report of trace {result.shown}: {result.html}")
    print(f"All {len(result.trace_ids)} traces are in {store}:")
    print(f"  os-trace list --store {store}")
    print(f"  os-trace show {result.trace_ids[-1]} --store {store}   # the failed request")
    return 0
