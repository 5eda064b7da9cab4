"""The trace follows greenthreads: eventlet spawn/spawn_n/spawn_after, GreenPool,
futurist's green pool, oslo.service's eventlet thread groups and looping calls.

Each scenario runs in a monkey-patched child process (eventlet and
oslo.service's backend are process-wide choices).
"""

from __future__ import annotations

from typing import Any

from tests.functional.threads_env import ThreadsTestCase, emit, run_child

CHILD = "tests.functional.test_threads_eventlet"


class EventletTest(ThreadsTestCase):

    def test_spawns_are_children_of_the_spawner(self) -> None:
        spans, result = run_child(f"{CHILD}:spawns", eventlet=True)
        request = spans["request"]
        for name in ("spawn", "spawn_n", "spawn_after", "pool.spawn", "pool.spawn_n",
                     "green executor", "green thread", "thread group"):
            self.assertEqual(spans[name]["parent"], request["span_id"], name)
            self.assertEqual(spans[name]["trace_id"], request["trace_id"], name)
        self.assertEqual(result["reused_worker"], 0, "green worker kept the context")
        self.assertEqual(result["outside"], 0)
        self.assertIsNone(spans["plain after"]["parent"])

    def test_pool_workers_started_in_a_request_start_clean(self) -> None:
        # a pool worker greenthread started inside a request's submit must not
        # keep that request's context: a done-callback of a later task runs on
        # the worker outside the task, and must not join the first request
        _, result = run_child(f"{CHILD}:pool_workers", eventlet=True)
        for pool, seen in result.items():
            self.assertEqual(seen["task"], seen["request"], f"{pool}: task left its trace")
            self.assertEqual(seen["callback"], 0, f"{pool}: worker kept the request's context")

    def test_looping_call_ticks(self) -> None:
        spans, result = run_child(f"{CHILD}:looping", eventlet=True)
        check_ticks(self, spans, result)


def check_ticks(test: Any, spans: dict[str, Any], result: dict[str, Any]) -> None:
    """The tick rule (os_trace_plugins.threads._looping), for both backends."""
    request = spans["request"]["span_id"]
    waited = [spans[f"waited {n}"] for n in range(3)]
    test.assertTrue(all(s["parent"] == request for s in waited),
                    "a loop the request waits on left its trace")
    late = [spans[f"tick {n}"] for n in range(result["ticks"])]
    before = result["before_end"]
    test.assertGreaterEqual(before, 1)
    test.assertTrue(all(s["parent"] == request for s in late[:before]))
    after = late[before:]
    test.assertGreaterEqual(len(after), 3)
    # at most the one tick decided before the request ended still joins it
    test.assertTrue(all(s["parent"] is None for s in after[1:]),
                    [s["parent"] for s in after])
    test.assertEqual(len({s["trace_id"] for s in after[1:]}), len(after) - 1,
                     "later ticks must be traces of their own")
    test.assertIsNone(spans["periodic 0"]["parent"])


def _instrument(provider: Any) -> Any:
    from os_trace_plugins import _hooks
    from os_trace_plugins.threads import ThreadsHook

    hook = _hooks.shared(ThreadsHook)
    hook.instrument(None, provider)
    return provider.get_tracer("child")


def spawns(provider: Any) -> None:
    import threading

    import eventlet
    import futurist
    from oslo_service import backend

    backend.init_backend(backend.BackendType.EVENTLET)
    from oslo_service import threadgroup

    from tests.functional.threads_env import current_span_id

    tracer = _instrument(provider)

    def work(name: str) -> Any:
        def fn(*args: Any) -> int:
            with tracer.start_as_current_span(name):
                return current_span_id()
        return fn

    pool = eventlet.GreenPool(4)
    green = futurist.GreenThreadPoolExecutor(max_workers=1)
    tg = threadgroup.ThreadGroup()
    with tracer.start_as_current_span("request"):
        eventlet.spawn(work("spawn")).wait()
        eventlet.spawn_n(work("spawn_n"))
        eventlet.spawn_after(0.01, work("spawn_after")).wait()
        pool.spawn(work("pool.spawn"))
        pool.spawn_n(work("pool.spawn_n"))
        pool.waitall()
        green.submit(work("green executor")).result()
        t = threading.Thread(target=work("green thread"))
        t.start()
        t.join()
        tg.add_thread(work("thread group"))
        tg.wait()
        eventlet.sleep(0.05)
    reused = green.submit(current_span_id).result()
    green.shutdown()
    eventlet.spawn(work("plain after")).wait()
    emit({"reused_worker": reused, "outside": current_span_id()})


def pool_workers(provider: Any) -> None:
    """Workers started by a submit inside a request, then a task from outside."""
    import concurrent.futures

    import eventlet
    import futurist

    from tests.functional.threads_env import current_span_id

    tracer = _instrument(provider)
    pools = {"concurrent.futures": concurrent.futures.ThreadPoolExecutor(1),
             "futurist threads": futurist.ThreadPoolExecutor(max_workers=1),
             "futurist green": futurist.GreenThreadPoolExecutor(max_workers=1)}
    def blocked(release: Any) -> int:
        release.wait()
        return current_span_id()

    def note(seen: dict[str, int]) -> Any:
        return lambda _f: seen.__setitem__("callback", current_span_id())

    out = {}
    for name, pool in pools.items():
        seen: dict[str, int] = {}
        release = eventlet.event.Event()
        with tracer.start_as_current_span(f"request {name}") as span:
            seen["request"] = span.get_span_context().span_id
            # the worker starts here; the green pool's worker then drains
            # the task queued behind this one (submitted below, outside)
            first = pool.submit(blocked, release)
        later = pool.submit(current_span_id)
        later.add_done_callback(note(seen))
        release.send(True)
        seen["task"] = first.result(timeout=10)
        later.result(timeout=10)
        eventlet.sleep(0.01)
        pool.shutdown(wait=True)
        out[name] = seen
    emit(out)


def run_loops(provider: Any, sleep: Any) -> dict[str, int]:
    """Both backends: a loop waited on, a loop left running, a periodic loop."""
    from oslo_service import loopingcall

    tracer = _instrument(provider)
    state = {"n": 0, "waited": 0, "ended": False, "before_end": 0, "periodic": 0}

    def waited() -> None:
        with tracer.start_as_current_span(f"waited {state['waited']}"):
            state["waited"] += 1
        if state["waited"] == 3:
            raise loopingcall.LoopingCallDone()

    def tick() -> None:
        with tracer.start_as_current_span(f"tick {state['n']}"):
            if not state["ended"]:
                state["before_end"] += 1
            state["n"] += 1

    def periodic() -> None:
        with tracer.start_as_current_span(f"periodic {state['periodic']}"):
            state["periodic"] += 1

    left = loopingcall.FixedIntervalLoopingCall(tick)
    span = tracer.start_span("request")
    from opentelemetry import trace

    with trace.use_span(span, end_on_exit=False):
        loopingcall.FixedIntervalLoopingCall(waited).start(interval=0.01).wait()
        left.start(interval=0.02)
        while state["n"] < 2:
            sleep(0.005)
    state["ended"] = True
    span.end()
    target = state["n"] + 4
    while state["n"] < target:
        sleep(0.005)
    left.stop()
    left.wait()
    periodic_lc = loopingcall.FixedIntervalLoopingCall(periodic)
    periodic_lc.start(interval=0.01)
    while state["periodic"] < 1:
        sleep(0.005)
    periodic_lc.stop()
    periodic_lc.wait()
    return {"ticks": state["n"], "before_end": state["before_end"]}


def looping(provider: Any) -> None:
    import eventlet
    from oslo_service import backend

    backend.init_backend(backend.BackendType.EVENTLET)
    emit(run_loops(provider, eventlet.sleep))
