"""A stand-in for an unmodified RPC service on an oslo.service backend.

``AUTO_BACKEND`` (THREADING or EVENTLET) is selected first, as services do
(an eventlet one monkey-patches before anything else); then oslo.messaging,
the config parse, an RPC server on ``fake://`` and one call inside a request
span.  No line of os_trace_plugins.  Prints one JSON line.
"""

import json
import os
import sys

BACKEND = os.environ.get("AUTO_BACKEND", "THREADING")
if BACKEND == "EVENTLET":
    import eventlet

    eventlet.monkey_patch()


def main():
    from oslo_service import backend

    backend.init_backend(backend.BackendType[BACKEND])
    import oslo_messaging as messaging
    from opentelemetry import trace
    from oslo_config import cfg

    cfg.CONF(sys.argv[1:], project="auto-rpc")
    transport = messaging.get_rpc_transport(cfg.CONF, "fake:///")

    class Endpoint:
        def ping(self, ctxt, x):
            return x + 1

    executor = "eventlet" if BACKEND == "EVENTLET" else "threading"
    target = messaging.Target(topic=f"auto-{os.getpid()}", server="s")
    server = messaging.get_rpc_server(transport, target, [Endpoint()], executor=executor)
    server.start()
    client = messaging.get_rpc_client(transport, messaging.Target(topic=target.topic))
    with trace.get_tracer("auto-rpc").start_as_current_span("request"):
        answer = client.call({}, "ping", x=1)
    server.stop()
    server.wait()
    print(json.dumps({"answer": answer, "backend": backend.get_backend_type().name}))


main()
