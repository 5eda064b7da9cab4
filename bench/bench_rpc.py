"""RPC hooks side by side: ours, oslo.messaging built-in tracing, the contrib 0.13.

Three tables, one run, rounds interleaved (``bench.harness``):

1. **Hook path alone** (perf_counter, µs per message = one send hook plus one
   receive hook around do-nothing originals): ours off / unsampled / sampled
   against the built-in ``trace_send``/``trace_receive`` and the contrib
   wrappers.  This is the "<= 2 µs off or unsampled" check.
2. **Whole RPC call, in process** (``time.process_time``, CPU µs per call on
   caller plus server): ``RPCClient.call`` -> serializer -> built-in tracing ->
   ``Transport._send`` -> a loopback driver (JSON round trip, like the wire)
   -> ``RPCServer._process_incoming`` -> ``RPCDispatcher.dispatch`` -> endpoint
   -> reply, all on one thread, so every hook point of every peer runs and no
   broker latency or polling sleep blurs the CPU figure.
3. **RabbitMQ** (process CPU µs per call, caller and server threads in one
   process on 127.0.0.1:5672), fewer rounds: the broker client's own CPU
   dominates here, which is why table 2 is the comparison that decides.

Spans go to an SDK TracerProvider without processors (export cost is the same
for everyone and excluded).  Run: ``python -m bench rpc [--quick] [--write]``.
"""

from __future__ import annotations

import functools
import json
import platform
import queue
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import oslo_messaging as om
import wrapt
from opentelemetry import context, trace
from opentelemetry.instrumentation.oslo_messaging import OsloMessagingInstrumentor
from opentelemetry.instrumentation.oslo_messaging import decorators as contrib
from opentelemetry.sdk.trace import TracerProvider
from oslo_messaging import _tracing as builtin
from oslo_messaging._drivers.impl_fake import FakeIncomingMessage
from oslo_messaging.rpc import dispatcher as rpc_dispatcher
from oslo_messaging.rpc import server as rpc_server

from bench.harness import interleave, table
from os_trace_plugins._hooks import shared
from os_trace_plugins._switches import SWITCHES
from os_trace_plugins.export._propagation import format_traceparent
from os_trace_plugins.export._sampler import ProfilerSampler
from os_trace_plugins.rpc._hook import RPCHook
from tests.base import make_conf
from tests.functional.rpc_env import register_messaging_opts, reset_builtin_tracer

__all__ = ["main"]

CTXT = {"request_id": "req-5d1c", "global_request_id": None, "user": "u1",
        "project_id": "p1", "is_admin": False, "roles": ["member"]}
MESSAGE = {"method": "ping", "args": {"n": 1}, "version": "1.0"}
TARGET = om.Target(topic="compute", server="host1")
UNSAMPLED = trace.NonRecordingSpan(trace.SpanContext(
    0x5D1C0FFEE, 0xBADC0DE, is_remote=True, trace_flags=trace.TraceFlags(0)))
#: distinct parents cycled through by the hook-path cases, so no per-parent
#: cache (the formatted traceparent) is hit more often than in a real service
N_PARENTS = 4096


def _unsampled_parents() -> list[trace.Span]:
    rng = random.Random(7)
    return [trace.NonRecordingSpan(trace.SpanContext(
        rng.getrandbits(128) | 1, rng.getrandbits(64) | 1, is_remote=True,
        trace_flags=trace.TraceFlags(0))) for _ in range(N_PARENTS)]


def _sampled_parents(provider: TracerProvider) -> list[trace.Span]:
    tracer = provider.get_tracer("bench")
    return [tracer.start_span("api") for _ in range(N_PARENTS)]


def _in(span: trace.Span | None, fn: Callable[[], object]) -> Callable[[], object]:
    """Run ``fn`` with ``span`` current (None: an empty context)."""
    def run() -> object:
        token = context.attach(trace.set_span_in_context(span) if span else context.Context())
        try:
            return fn()
        finally:
            context.detach(token)
    return run


def wire(parent: trace.Span) -> dict[str, Any]:
    """The context dict any W3C caller puts on the wire inside ``parent``."""
    return {**CTXT, "traceparent": format_traceparent(parent.get_span_context())}


class _Incoming:
    """What a driver hands the dispatcher (a call: it has a reply queue)."""

    def __init__(self, ctxt: dict[str, Any]) -> None:
        self.ctxt, self.message, self._reply_q = ctxt, MESSAGE, True
        self.msg_id = "5d1c"


_BOX: list[Any] = [None]


class _Null:
    """``_send`` and ``dispatch`` that do nothing: what is left is the hooks' cost."""

    def _send(self, target: Any, ctxt: Any, message: Any, wait_for_reply: Any = None,
              **kwargs: Any) -> None:
        _BOX[0] = ctxt

    def dispatch(self, incoming: Any) -> None:
        return None


class PlainPeer(_Null):
    pass


class OursPeer(_Null):
    pass


class ContribPeer(_Null):
    pass


class OursHostSamplerPeer(_Null):
    pass


def bench_provider() -> TracerProvider:
    """The provider every row shares: the sampler ``setup()`` installs."""
    return TracerProvider(sampler=ProfilerSampler())


Sides = tuple[Callable[[], None], Callable[[], None], Callable[[], None]]


def _hook_on(peer: type, provider: TracerProvider) -> RPCHook:
    """An RPC hook instrumenting ``peer``'s ``_send``/``dispatch`` (not oslo.messaging)."""

    class BenchHook(RPCHook):
        send_target = (__name__, f"{peer.__name__}._send")
        dispatch_target = (__name__, f"{peer.__name__}.dispatch")

        def _patch_more(self) -> None:
            pass

    hook = BenchHook()
    hook.instrument(None, provider)
    return hook


def variants(provider: TracerProvider) -> dict[str, Sides]:
    """name -> (caller side alone, server side alone, both); each run takes the
    next of ``N_PARENTS`` parents (and their wire contexts)."""
    conf = make_conf()
    register_messaging_opts(conf)
    conf.set_override("tracing_enabled", True, "oslo_messaging_tracing")
    # private hooks on the bench classes, following trace_rpc as the real one does
    _hook_on(OursPeer, provider)
    _hook_on(OursHostSamplerPeer, TracerProvider())  # a host's SDK default sampler, asked
    c_tracer = provider.get_tracer("contrib")
    wrapt.wrap_function_wrapper(ContribPeer, "_send", contrib.inject_trace(c_tracer))
    wrapt.wrap_function_wrapper(ContribPeer, "dispatch", contrib.rpc_server_wrapper(c_tracer))
    sampled, unsampled = _sampled_parents(provider), _unsampled_parents()
    plain, ours, theirs = PlainPeer(), OursPeer(), ContribPeer()

    def sides(peer: Any, parents: list[trace.Span]) -> Sides:
        contexts = [trace.set_span_in_context(p, context.Context()) for p in parents]
        wires = [wire(p) for p in parents]
        state = [0]

        def caller() -> None:
            i = state[0] = (state[0] + 1) % N_PARENTS
            token = context.attach(contexts[i])
            try:
                peer._send(TARGET, dict(CTXT), MESSAGE, True)
            finally:
                context.detach(token)

        def receiver() -> None:
            i = state[0] = (state[0] + 1) % N_PARENTS
            peer.dispatch(_Incoming(wires[i]))

        def both() -> None:
            caller()
            peer.dispatch(_Incoming(_BOX[0]))
        return caller, receiver, both

    class _Builtin:
        def _send(self, target: Any, ctxt: Any, message: Any, wait: Any) -> None:
            with builtin.trace_send(conf, target, "ping", "call", ctxt):
                plain._send(target, ctxt, message, wait)

        def dispatch(self, incoming: Any) -> None:
            with builtin.trace_receive(conf, incoming):
                plain.dispatch(incoming)

    return {
        "no instrumentation": sides(plain, sampled),
        "ours, trace_rpc off": sides(ours, sampled),
        "ours, unsampled trace": sides(ours, unsampled),
        UNSAMPLED_HOST: sides(OursHostSamplerPeer(), unsampled),
        "ours, sampled": sides(ours, sampled),
        "oslo.messaging built-in, sampled": sides(_Builtin(), sampled),
        "contrib 0.13, sampled": sides(theirs, sampled),
        "contrib 0.13, unsampled trace": sides(theirs, unsampled),
    }


UNSAMPLED_HOST = "ours, unsampled trace, SDK default sampler"


def switch_for(name: str, start: bool) -> None:
    """The off row runs with ``trace_rpc`` off, every other row with it on."""
    if name == "ours, trace_rpc off":
        SWITCHES.set("trace_rpc", not start)


def hook_path(provider: TracerProvider, quick: bool) -> str:
    found = variants(provider)
    setup = {name: functools.partial(switch_for, name, True) for name in found}
    teardown = {name: functools.partial(switch_for, name, False) for name in found}
    out = []
    for side, title in ((2, "one send + one receive hook"), (0, "caller side alone"),
                        (1, "server side alone")):
        cases = {name: fns[side] for name, fns in found.items()}
        results = interleave(cases, inner=300 if quick else 2000, rounds=5 if quick else 15,
                             setup=setup, teardown=teardown)  # type: ignore[arg-type]
        out.append(table(f"Hook path alone, {title}, µs per message (perf_counter)",
                         results, "no instrumentation", floor="contrib 0.13, sampled",
                         notes=NOTES if side == 2 else ()))
    return "\n".join(out)


NOTES = [
    "Originals do nothing; the figure is the hooks' own cost (wrapt wrapper, carrier, "
    "span, attributes, context attach).",
    "Targets: off <= 1 µs per message; unsampled <= 1/3 of contrib's unsampled; "
    "sampled <= the cheaper of built-in and contrib.",
    "Every row shares one provider with the sampler setup() installs (ProfilerSampler: "
    "parent-based, live ratio). Unsampled, ours builds no span where that sampler drops "
    "it (os_trace_plugins._sampling): the caller writes the current span context on the "
    "wire as it is, the server parses it, attaches the remote parent (so calls the "
    "endpoint makes carry the decision on) and strips the key; the 'SDK default "
    "sampler' row is a host's provider whose sampler is asked (should_sample) per span.",
    "trace_rpc off: the caller-side wrapper is detached (the real hook follows the "
    "switch); the server-side one stays (it strips other emitters' keys) and reads it.",
    f"Every case cycles through {N_PARENTS} distinct parents (and carriers).",
    "Robustness, not timed: the contrib consumer wrappers call propagate.extract "
    "unguarded; a bytes or int traceparent or baggage raises into the service.",
]


class _LoopbackDriver:
    """Delivers a send straight to an RPCServer on the same thread."""

    def __init__(self, conf: Any) -> None:
        self.conf = conf
        self.server: Any = None

    def send(self, target: Any, ctxt: Any, message: Any, wait_for_reply: Any = None,
             **kwargs: Any) -> Any:
        wire = json.loads(json.dumps({"c": ctxt, "m": message}))  # what a driver does
        reply_q: Any = queue.SimpleQueue() if wait_for_reply else None
        self.server._process_incoming([FakeIncomingMessage(wire["c"], wire["m"],
                                                           reply_q, None)])
        if reply_q is not None:
            reply, failure = reply_q.get_nowait()
            if failure:
                raise failure
            return reply
        return None


class Endpoint:
    def ping(self, ctxt: Any, n: int) -> int:
        return n


def _peers(conf: Any, provider: TracerProvider) -> tuple[dict[str, Callable[[], None]],
                                                         dict[str, Callable[[], None]]]:
    ours, contrib_inst = shared(RPCHook), OsloMessagingInstrumentor()

    def builtin_on(on: bool) -> Callable[[], None]:
        return lambda: conf.set_override("tracing_enabled", on, "oslo_messaging_tracing")

    setup = {
        "ours, trace_rpc off": lambda: (ours.instrument(conf, provider),
                                        SWITCHES.set("trace_rpc", False)),
        "ours, unsampled trace": lambda: ours.instrument(conf, provider),
        "ours, sampled": lambda: ours.instrument(conf, provider),
        "oslo.messaging built-in, sampled": builtin_on(True),
        "contrib 0.13, sampled": lambda: contrib_inst.instrument(tracer_provider=provider),
    }
    teardown = {
        "ours, trace_rpc off": lambda: (SWITCHES.set("trace_rpc", True), ours.uninstrument()),
        "ours, unsampled trace": ours.uninstrument,
        "ours, sampled": ours.uninstrument,
        "oslo.messaging built-in, sampled": builtin_on(False),
        "contrib 0.13, sampled": contrib_inst.uninstrument,
    }
    return setup, teardown  # type: ignore[return-value]


def _call_cases(rpc: Any, provider: TracerProvider) -> dict[str, Callable[[], object]]:
    parent = provider.get_tracer("bench").start_span("api")

    def call() -> object:
        return rpc.call(dict(CTXT), "ping", n=1)

    return {"no instrumentation": _in(parent, call), "ours, trace_rpc off": _in(parent, call),
            "ours, unsampled trace": _in(UNSAMPLED, call), "ours, sampled": _in(parent, call),
            "oslo.messaging built-in, sampled": _in(parent, call),
            "contrib 0.13, sampled": _in(parent, call)}


def whole_call(provider: TracerProvider, quick: bool) -> str:
    conf = make_conf()
    register_messaging_opts(conf)
    driver = _LoopbackDriver(conf)
    transport = om.transport.RPCTransport(driver)
    driver.server = rpc_server.RPCServer(
        transport, TARGET, rpc_dispatcher.RPCDispatcher([Endpoint()], None))
    rpc = om.get_rpc_client(transport, om.Target(topic="compute"))
    setup, teardown = _peers(conf, provider)
    results = interleave(_call_cases(rpc, provider), inner=100 if quick else 500,
                         rounds=5 if quick else 15, timer=time.process_time,
                         setup=setup, teardown=teardown)
    return table("Whole RPC call in process (loopback driver), CPU µs per call, "
                 "caller + server", results, "no instrumentation",
                 floor="contrib 0.13, sampled",
                 notes=["RPCClient.call -> built-in trace_send -> Transport._send -> JSON "
                        "round trip -> RPCServer._process_incoming (built-in trace_receive) "
                        "-> RPCDispatcher.dispatch -> endpoint -> reply, one thread.",
                        "The dispatcher starts a watchdog Thread object per message, "
                        "a large part of the baseline."])


def rabbit(provider: TracerProvider, quick: bool) -> str:
    from tests.services import RABBIT_URL
    conf = make_conf()
    register_messaging_opts(conf)
    conf.register_opts(rpc_server.msg_server._pool_opts)
    topic = f"os-trace-bench-{uuid.uuid4().hex[:8]}"
    transport = om.get_rpc_transport(conf, url=RABBIT_URL)
    srv = om.get_rpc_server(transport, om.Target(topic=topic, server="s"), [Endpoint()])
    srv.start()
    try:
        rpc = om.get_rpc_client(transport, om.Target(topic=topic, server="s"))
        rpc.call({}, "ping", n=1)
        setup, teardown = _peers(conf, provider)
        results = interleave(_call_cases(rpc, provider), inner=20 if quick else 30,
                             rounds=3 if quick else 25, timer=time.process_time,
                             setup=setup, teardown=teardown)
    finally:
        srv.stop()
        srv.wait()
        transport.cleanup()
    return table("RabbitMQ round trip, process CPU µs per call (caller + server in one "
                 "process)", results, "no instrumentation", floor="contrib 0.13, sampled",
                 notes=["Broker client CPU (kombu/amqp, reply polling, heartbeat threads) "
                        "is ~2-3 ms per call and varies by a few hundred µs between "
                        "rounds on this shared host, about the size of the hooks' whole "
                        "cost: differences between the three traced rows are within that "
                        "noise. Table 2 (same code path, no broker) is the comparison that "
                        "decides."])


def main(quick: bool) -> str:
    provider = bench_provider()
    trace.set_tracer_provider(provider)  # the built-in tracing uses the global one
    reset_builtin_tracer()
    import importlib.metadata as md
    versions = ", ".join(f"{d} {md.version(d)}" for d in (
        "oslo.messaging", "opentelemetry-sdk", "opentelemetry-instrumentation-oslo-messaging"))
    out = ["## RPC hooks (oslo.messaging)", "",
           f"Machine: {platform.machine()}, Python {platform.python_version()}, "
           f"{versions}; shared 2-core host under load from other jobs, so read "
           "ratios, not absolute µs.", ""]
    out.append(hook_path(provider, quick))
    out.append(whole_call(provider, quick))
    try:
        from tests.services import require_service
        require_service("rabbitmq")
        out.append(rabbit(provider, quick))
    except BaseException as exc:  # skipped (no broker): say so instead of failing
        out.append(f"RabbitMQ table skipped: {exc}\n")
    return "\n".join(out)


# -- instruction counts (valgrind --tool=callgrind) ---------------------------
#: rows counted, caller + server hook together (side 2 of :func:`variants`);
#: ``--sides`` counts each side alone too (twice the valgrind runs)
CALLGRIND_NAMES = (
    "no instrumentation", "ours, unsampled trace", UNSAMPLED_HOST,
    "contrib 0.13, unsampled trace",
    "ours, sampled", "contrib 0.13, sampled", "oslo.messaging built-in, sampled",
    "ours, trace_rpc off")
LENGTHS = (100, 600)


def run_one(name: str, side: int, n: int) -> None:
    """The child of :func:`callgrind`: ``n`` messages of one row and side."""
    provider = bench_provider()
    trace.set_tracer_provider(provider)
    reset_builtin_tracer()
    fn = variants(provider)[name][side]
    switch_for(name, True)
    fn()
    for _ in range(n):
        fn()


def _instructions(name: str, side: int, n: int) -> int:
    import os
    import re
    import subprocess
    import sys
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
           sys.executable, "-m", "bench.bench_rpc", "--one", name, str(side), str(n)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONHASHSEED="0"),  # same dict layouts
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if found is None:
        raise RuntimeError(proc.stderr[-2000:])
    return int(found.group(1))


def callgrind(sides: tuple[int, ...] = (2,)) -> str:
    """Instructions per message, each row at two run lengths (start-up cancels)."""
    from concurrent.futures import ThreadPoolExecutor
    jobs = [(name, side, n) for name in CALLGRIND_NAMES for side in sides for n in LENGTHS]
    def count(job: tuple[str, int, int]) -> int:
        n = _instructions(*job)
        print(f"callgrind: {job} {n}", flush=True)  # a partial run still tells
        return n

    with ThreadPoolExecutor(2) as pool:
        counts = dict(zip(jobs, pool.map(count, jobs), strict=True))
    per = {(name, side): (counts[(name, side, LENGTHS[1])] - counts[(name, side, LENGTHS[0])])
           / (LENGTHS[1] - LENGTHS[0]) for name in CALLGRIND_NAMES for side in sides}
    labels = {0: "caller", 1: "server", 2: "caller + server"}
    lines = ["### Instructions per message, hook path alone (valgrind --tool=callgrind)", ""]
    for side in sides:
        base = per[("no instrumentation", side)]
        floor = per[("contrib 0.13, sampled", side)] - base
        lines += [f"{labels[side]}:", "",
                  "| case | instructions / message | added over none | added / contrib "
                  "sampled's added |", "|---|---:|---:|---:|"]
        for name in CALLGRIND_NAMES:
            added = per[(name, side)] - base
            lines.append(f"| {name} | {per[(name, side)]:,.0f} | {added:+,.0f} | "
                         f"{added / floor:.3f} |")
        lines.append("")
    lines += [f"- Whole process counted at {LENGTHS[0]} and {LENGTHS[1]} messages; "
              "the difference divided by the extra messages, so start-up cancels.",
              "- Same bench classes as the perf_counter tables (originals do nothing)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys
    if sys.argv[1:2] == ["--one"]:
        run_one(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1:2] == ["--callgrind"]:
        text = callgrind((0, 1, 2) if "--sides" in sys.argv else (2,))
        print(text)
    else:
        print(main(quick="--quick" in sys.argv))
