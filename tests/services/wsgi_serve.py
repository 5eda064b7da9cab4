"""Serve a WSGI app built in code on 127.0.0.1:PORT (argv[1]), as uwsgi would.

A stand-in for the operator's WSGI server: nothing of os_trace_plugins is
imported here; the tests start the scripts beside it (``placement-api``,
``designate-api``, whose file names are the program names the spans are
named after) under ``opentelemetry-instrument``.  SIGTERM stops it cleanly
between requests (serve_forever returns, atexit runs, as under a real
server's graceful stop).
"""

import signal
import sys
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

__all__ = ["serve"]


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def serve(load):
    port = int(sys.argv[1])
    server = make_server("127.0.0.1", port, load(), handler_class=_Quiet)
    signal.signal(signal.SIGTERM,
                  lambda *_: threading.Thread(target=server.shutdown).start())
    print("READY", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
