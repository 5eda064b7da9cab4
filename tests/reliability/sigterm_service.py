"""An oslo.service RPC service for the SIGTERM tests (tests/reliability/test_shutdown.py).

``python sigterm_service.py BACKEND LAUNCHER WORKERS CONFIG TOPIC`` selects
oslo.service's backend first (an eventlet service monkey-patches before
anything else), parses CONFIG (``[profiler]`` and ``transport_url``), calls
``os_trace_plugins.setup(CONF)`` in the parent as a service does, and launches
an RPC server on RabbitMQ with ``ServiceLauncher`` (``service``) or
``ProcessLauncher`` (``process``, forked workers).  Each worker prints
``READY <pid>`` once its server consumes.  ``OS_TRACE_NO_EXIT_FLUSH=1`` detaches
the worker_exit hook (the control run: what is lost without it).
"""

import os
import sys

BACKEND, LAUNCHER, WORKERS, CONFIG, TOPIC = sys.argv[1:6]
if BACKEND == "EVENTLET":
    import eventlet

    eventlet.monkey_patch()


def main() -> None:
    from oslo_service import backend

    backend.init_backend(backend.BackendType[BACKEND])
    import oslo_messaging as om
    from oslo_config import cfg
    from oslo_service import service

    import os_trace_plugins

    conf = cfg.CONF
    conf(["--config-file", CONFIG], project="sigterm")
    assert os_trace_plugins.setup(conf, service="sigterm-service")
    if os.environ.get("OS_TRACE_NO_EXIT_FLUSH") == "1":
        from os_trace_plugins._hooks import shared
        from os_trace_plugins.export._exit import WorkerExitHook

        shared(WorkerExitHook).uninstrument()

    class Endpoint:
        def echo(self, ctxt, value):
            return value

    class RPCService(service.Service):
        def start(self) -> None:
            super().start()
            self.transport = om.get_rpc_transport(conf)
            target = om.Target(topic=TOPIC, server=f"w-{os.getpid()}")
            executor = "eventlet" if BACKEND == "EVENTLET" else "threading"
            self.server = om.get_rpc_server(self.transport, target, [Endpoint()],
                                            executor=executor)
            self.server.start()
            print(f"READY {os.getpid()}", flush=True)

        def stop(self, graceful: bool = False) -> None:
            if hasattr(self, "server"):  # the eventlet parent stops it unstarted
                self.server.stop()
                self.server.wait()
                self.transport.cleanup()
            super().stop(graceful)

    if LAUNCHER == "service":
        launcher = service.ServiceLauncher(conf)
        launcher.launch_service(RPCService())
    else:
        launcher = service.ProcessLauncher(conf)
        launcher.launch_service(RPCService(), workers=int(WORKERS))
    launcher.wait()


main()
