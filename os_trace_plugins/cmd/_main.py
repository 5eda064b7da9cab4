"""``os-trace``: check a configuration, sign a request, read stored traces, run the demo.

Each subcommand is a module of this package exposing
``register(subparsers) -> None``; the parser it adds sets ``func(args) -> int``.
A subcommand whose module or dependency is missing is simply not offered.
Errors are one clear line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from os_trace_plugins._version import __version__

__all__ = ["main", "build_parser", "SUBCOMMAND_MODULES", "one_line"]

#: Modules (in this package) that contribute subcommands, in help order.
SUBCOMMAND_MODULES = ("check", "sign", "traces", "demo")


def one_line(message: object) -> str:
    """``message`` as one printable line: a damaged store's bytes quoted in an
    error must not reach the terminal as control characters or line breaks."""
    text = str(message)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="os-trace", description="OpenTelemetry tracing for OpenStack services.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"os_trace_plugins.cmd._{name}")
        except ImportError as exc:
            logging.getLogger(__name__).debug("os-trace %s unavailable: %s", name, exc)
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # one line, never a traceback
        if args.debug:
            raise
        print(f"os-trace {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
