"""A demo service in its own process (the broker mode of ``os-trace demo``).

``python -m os_trace_plugins.demo._process ROLE --transport-url URL --store PATH
--suffix S [--db-url URL]`` starts one service (conductor, worker, listener)
with ``os_trace_plugins.setup()`` writing to the demo's store, prints
``READY`` once it serves, and runs until its stdin closes (the demo closes it
when done, or dies); then it stops, flushes its spans and exits.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time

__all__ = ["main", "ROLES"]

ROLES = ("conductor", "worker", "listener")


_print_lock = threading.Lock()


def _done(instance_id: str) -> None:
    with _print_lock:
        print(f"DONE {instance_id}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="os_trace_plugins.demo._process")
    p.add_argument("role", choices=ROLES)
    p.add_argument("--transport-url", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--suffix", required=True)
    p.add_argument("--db-url", default="")
    p.add_argument("--key", default="")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format=f"demo-{args.role}: %(levelname)s %(name)s: %(message)s")

    from os_trace_plugins.cmd._demo import quiet_warnings
    quiet_warnings()

    import os_trace_plugins
    from os_trace_plugins.demo import _services as services
    from os_trace_plugins.demo import _topology as topology

    conf = topology.demo_conf(args.store, args.key, service_name=f"demo-{args.role}")
    os_trace_plugins.setup(conf, service=f"demo-{args.role}")
    topics = services.Topics(args.suffix)
    rpc, notif = topology.transports(conf, args.transport_url, args.suffix)
    if args.role == "conductor":
        run = topology.start_conductor(conf, rpc, notif, topics, args.db_url)
    elif args.role == "worker":
        run, _ = topology.start_worker(rpc, topics, report=_done)
    else:
        run, _ = topology.start_listener(notif, topics, report=_done)
    for note in run.notes:
        print(f"NOTE {note}", flush=True)
    print("READY", flush=True)
    try:
        sys.stdin.read()  # until the demo closes our stdin
    except KeyboardInterrupt:
        pass
    t0 = time.monotonic()
    run.stop()
    t1 = time.monotonic()
    rpc.cleanup()
    notif.cleanup()
    os_trace_plugins.shutdown()  # flushes the batch processor into the store
    logging.getLogger(__name__).debug("stopped in %.2fs, flushed in %.2fs", t1 - t0,
                                      time.monotonic() - t1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
