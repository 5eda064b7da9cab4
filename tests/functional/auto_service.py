"""A stand-in for an unmodified OpenStack service: no line of os_trace_plugins.

Started by tests/functional/test_auto_*.py as
``opentelemetry-instrument python auto_service.py --config-file F``; what it
does besides parsing its configuration and running SQL inside a request span
is chosen by ``AUTO_SVC_MODE`` (osprofiler, mutate, fork, spawn, nocfg).
It prints one JSON line: the watched modules already imported when its first
line ran, its pid and its children's pids.
"""

import json
import logging
import os
import sys

# not stevedore: oslo.config imports it, and os_trace_plugins imports oslo.config
# (as every OpenStack service does first thing; it selects nothing)
WATCHED = ("oslo_messaging", "oslo_service", "eventlet", "sqlalchemy", "osprofiler",
           "futurist", "requests", "cheroot", "pecan", "flask")
EARLY = sorted(m for m in WATCHED if m in sys.modules)


def request(name):
    import sqlalchemy as sa
    from opentelemetry import trace

    engine = sa.create_engine("sqlite://")
    with trace.get_tracer("auto-svc").start_as_current_span(f"request {name}"):
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))


def spawned():
    from opentelemetry import trace

    request("spawned")
    trace.get_tracer_provider().force_flush()  # the child leaves through os._exit


def main():
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s %(message)s")
    mode = os.environ.get("AUTO_SVC_MODE", "")
    from oslo_config import cfg

    conf = cfg.CONF
    if "osprofiler" in mode:
        import osprofiler.opts  # noqa: F401  (registers on cfg.CONF, nova's order)
    out = {"early": EARLY, "pid": os.getpid(), "children": []}
    if "nocfg" not in mode:
        conf(sys.argv[1:], project="auto-svc")
    if "osprofiler" in mode:
        from osprofiler import initializer

        initializer.init_from_conf(conf, {}, "auto", "svc", "localhost")
    request(1)
    if "mutate" in mode:
        path = conf.config_file[0]
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace(os.environ["AUTO_SVC_FROM"], os.environ["AUTO_SVC_TO"]))
        conf.mutate_config_files()
        request(2)
    if "fork" in mode:
        pid = os.fork()
        if pid == 0:
            from opentelemetry import trace

            request("forked")
            trace.get_tracer_provider().force_flush()
            os._exit(0)
        os.waitpid(pid, 0)
        out["children"].append(pid)
    if "spawn" in mode:
        import multiprocessing

        proc = multiprocessing.get_context("spawn").Process(target=spawned)
        proc.start()
        proc.join(30)
        out["children"].append(proc.pid)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
