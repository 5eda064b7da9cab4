"""oslo.service's threading backend: thread groups and looping calls; and the
hook's promise to import nothing the service did not import itself.

Child processes: the backend is a process-wide choice.
"""

from __future__ import annotations

from typing import Any

from tests.functional.test_threads_eventlet import check_ticks, run_loops
from tests.functional.threads_env import ThreadsTestCase, emit, run_child

CHILD = "tests.functional.test_threads_oslo_service"


class ThreadingBackendTest(ThreadsTestCase):

    def test_thread_group(self) -> None:
        spans, patched = run_child(f"{CHILD}:thread_group")
        self.assertTrue(patched, "oslo.service moved LoopingCallBase._start (a private "
                        "method the tick rule patches): see docs/threads.md")
        self.assertEqual(spans["group thread"]["parent"], spans["request"]["span_id"])
        self.assertEqual(spans["group timer 0"]["parent"], spans["request"]["span_id"])

    def test_looping_call_ticks(self) -> None:
        spans, result = run_child(f"{CHILD}:looping")
        check_ticks(self, spans, result)


class NoImportTest(ThreadsTestCase):

    def test_instrumenting_imports_nothing(self) -> None:
        _, result = run_child(f"{CHILD}:imports")
        self.assertEqual(result["before"], [], "instrumenting imported these")
        self.assertTrue(result["patched_after_import"])
        self.assertIsNone(result["backend"], "instrumenting selected a backend")


def thread_group(provider: Any) -> None:
    from oslo_service import backend

    backend.init_backend(backend.BackendType.THREADING)
    from oslo_service import loopingcall, threadgroup

    from tests.functional.test_threads_eventlet import _instrument

    tracer = _instrument(provider)

    def work() -> None:
        with tracer.start_as_current_span("group thread"):
            pass

    def timer() -> None:
        with tracer.start_as_current_span("group timer 0"):
            pass
        raise loopingcall.LoopingCallDone()  # one tick only

    tg = threadgroup.ThreadGroup()
    with tracer.start_as_current_span("request"):
        tg.add_thread(work)
        tg.add_timer(0.01, timer)
        tg.wait()
    tg.stop()
    from oslo_service.backend._common import loopingcall as common

    emit(hasattr(common.LoopingCallBase._start, "__wrapped__"))


def looping(provider: Any) -> None:
    import time

    from oslo_service import backend

    backend.init_backend(backend.BackendType.THREADING)
    emit(run_loops(provider, time.sleep))


def imports(provider: Any) -> None:
    import sys

    from tests.functional.test_threads_eventlet import _instrument

    watched = ("futurist", "eventlet", "oslo_service", "oslo_service.backend")
    _instrument(provider)
    before = sorted(m for m in watched if m in sys.modules)
    import futurist
    from oslo_service import backend

    emit({"before": before,
          "patched_after_import": hasattr(futurist.ThreadPoolExecutor.submit,
                                          "__wrapped__"),
          "backend": backend.get_backend_type() and backend.get_backend_type().value})
