"""``os-trace sign --key KEY [--sql]``: headers to trace one request by hand.

Prints curl ``-H`` arguments (a signed W3C traceparent, valid for
``[profiler] signature_max_age``) on stdout and the trace id on stderr::

    curl $(os-trace sign --key "$KEY" --sql) https://nova.example/v2.1/servers

``--osprofiler`` prints OSProfiler's ``X-Trace-Info``/``X-Trace-HMAC`` instead,
for an API still running OSProfiler's middleware. The key may come from
``$OS_TRACE_HMAC_KEY`` so it stays out of ``ps`` output and shell history.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any

__all__ = ["register", "run", "curl_arguments"]


def register(sub: Any) -> None:
    p = sub.add_parser("sign", help="print signed trace headers for curl")
    p.add_argument("--key", default=None,
                   help="a key of the API's [profiler] hmac_keys "
                        "(default: $OS_TRACE_HMAC_KEY)")
    p.add_argument("--sql", action="store_true",
                   help="also ask every service the request reaches to record its "
                        "SQL statements")
    p.add_argument("--osprofiler", action="store_true",
                   help="OSProfiler's X-Trace-Info/X-Trace-HMAC headers instead")
    p.add_argument("--format", choices=("curl", "lines"), default="curl",
                   help="curl -H arguments (default) or one 'Name: value' per line")
    p.set_defaults(func=run)


def curl_arguments(headers: dict[str, str]) -> str:
    return " ".join(f"-H {shlex.quote(f'{k}: {v}')}" for k, v in headers.items())


def run(args: argparse.Namespace) -> int:
    from os_trace_plugins.wsgi import _signing as signing

    key = (args.key or os.environ.get("OS_TRACE_HMAC_KEY") or "").strip()
    if not key:
        print("os-trace sign: no key: pass --key or set OS_TRACE_HMAC_KEY",
              file=sys.stderr)
        return 2
    if key in signing.PUBLIC_KEYS:
        print(f"os-trace sign: {key} is OSProfiler's public default key; APIs "
              "never trust it", file=sys.stderr)
        return 2
    if args.osprofiler:
        if args.sql:
            print("os-trace sign: --sql needs our signature format (drop --osprofiler)",
                  file=sys.stderr)
            return 2
        headers = signing.osprofiler_headers(key)
        trace_id = signing.osprofiler_trace_id(headers[signing.X_TRACE_INFO])
    else:
        headers = signing.signed_headers(key, sql=args.sql)
        trace_id = headers["traceparent"].split("-")[1]
    if args.format == "lines":
        print("\n".join(f"{k}: {v}" for k, v in headers.items()))
    else:
        print(curl_arguments(headers))
    print(f"trace id: {trace_id}", file=sys.stderr)
    return 0
