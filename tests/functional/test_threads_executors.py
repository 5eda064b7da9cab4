"""The trace follows work handed to stdlib and futurist pools and to threads.

In-process: ``concurrent.futures``, futurist's thread pools and ``threading``
need no process-wide choice.  Each test asserts on finished spans: the task's
span is a child of the span that submitted it, and a reused worker's next
task starts clean.
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

import futurist
from opentelemetry import baggage, context, trace

from os_trace_plugins import _flagged
from os_trace_plugins.threads import bind
from tests.functional.threads_env import ThreadsTestCase, current_span_id


class ExecutorTest(ThreadsTestCase):

    def check_pool(self, pool: Any) -> None:
        with pool:
            with self.tracer.start_as_current_span("request"):
                pool.submit(self.work("task")).result(timeout=10)
                list(pool.map(lambda _: self.work("mapped")(), [1]))
            # the same worker, a task submitted outside any trace
            after = pool.submit(current_span_id).result(timeout=10)
        self.assertChildOf(self.span("task"), self.span("request"))
        self.assertChildOf(self.span("mapped"), self.span("request"))
        self.assertEqual(after, 0, "the worker kept the previous task's context")

    def test_stdlib_pool(self) -> None:
        self.check_pool(concurrent.futures.ThreadPoolExecutor(1))

    def test_futurist_pool(self) -> None:
        self.check_pool(futurist.ThreadPoolExecutor(1))

    def test_futurist_dynamic_pool(self) -> None:
        self.check_pool(futurist.DynamicThreadPoolExecutor(max_workers=2, min_workers=1))

    def test_futurist_submit_after(self) -> None:
        class Delayed(futurist.DelayedExecutorMixin, futurist.ThreadPoolExecutor):
            pass

        pool = Delayed(max_workers=1)
        try:
            with self.tracer.start_as_current_span("request"):
                fut = pool.submit_after(0.01, self.work("later"))
            fut.result(timeout=10)
        finally:
            pool.shutdown()
        self.assertChildOf(self.span("later"), self.span("request"))

    def test_worker_started_in_a_request_does_not_keep_it(self) -> None:
        # the worker thread is started by the first submit, inside the request
        pool = concurrent.futures.ThreadPoolExecutor(1)
        with pool:
            with self.tracer.start_as_current_span("request"):
                pool.submit(lambda: None).result(timeout=10)
            leaked = pool.submit(lambda: context.get_current()).result(timeout=10)
        self.assertEqual(dict(leaked), {}, "the worker runs in the first request's context")

    def test_two_requests_on_one_worker(self) -> None:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            for name in ("a", "b"):
                with self.tracer.start_as_current_span(f"request {name}"):
                    pool.submit(self.work(f"task {name}")).result(timeout=10)
        self.assertChildOf(self.span("task a"), self.span("request a"))
        self.assertChildOf(self.span("task b"), self.span("request b"))

    def test_task_result_and_exception_pass_through(self) -> None:
        def boom() -> None:
            raise KeyError("x")

        with futurist.ThreadPoolExecutor(1) as pool:
            with self.tracer.start_as_current_span("request"):
                self.assertEqual(pool.submit(lambda a, b=0: a + b, 1, b=2).result(), 3)
                fut = pool.submit(boom)
                with self.assertRaises(KeyError):
                    fut.result(timeout=10)

    def test_baggage_travels(self) -> None:
        token = context.attach(baggage.set_baggage("k", "v"))
        try:
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                seen = pool.submit(lambda: baggage.get_baggage("k")).result(timeout=10)
        finally:
            context.detach(token)
        self.assertEqual(seen, "v")

    def test_flagged_request_counts_while_its_task_runs(self) -> None:
        _flagged.reset()
        self.addCleanup(_flagged.reset)
        release = threading.Event()
        seen: list[int] = []
        token = context.attach(baggage.set_baggage(_flagged.SQL_BAGGAGE_KEY, "1"))
        try:
            pool = concurrent.futures.ThreadPoolExecutor(1)
            fut = pool.submit(lambda: (seen.append(_flagged.running()), release.wait(10)))
        finally:
            context.detach(token)
        release.set()
        fut.result(timeout=10)
        pool.shutdown()
        self.assertEqual(seen, [1])
        self.assertEqual(_flagged.running(), 0)

    def test_uninstrument_restores(self) -> None:
        self.hook.uninstrument()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            with self.tracer.start_as_current_span("request"):
                pool.submit(self.work("task")).result(timeout=10)
        self.assertIsNone(self.span("task").parent)
        self.assertFalse(hasattr(concurrent.futures.ThreadPoolExecutor.submit, "__wrapped__"))
        self.assertFalse(hasattr(threading.Thread.start, "__wrapped__"))


class ThreadTest(ThreadsTestCase):

    def test_thread(self) -> None:
        with self.tracer.start_as_current_span("request"):
            t = threading.Thread(target=self.work("in thread"))
            t.start()
            t.join()
        self.assertChildOf(self.span("in thread"), self.span("request"))
        self.assertNotIn("run", t.__dict__, "our run stayed on the thread")

    def test_timer_and_subclass_overriding_run(self) -> None:
        work = self.work("subclass")

        class Worker(threading.Thread):
            def run(self) -> None:
                work()

        with self.tracer.start_as_current_span("request"):
            timer = threading.Timer(0.01, self.work("timer"))
            timer.start()
            worker = Worker()
            worker.start()
            timer.join()
            worker.join()
        self.assertChildOf(self.span("timer"), self.span("request"))
        self.assertChildOf(self.span("subclass"), self.span("request"))

    def test_thread_outside_a_trace_is_left_alone(self) -> None:
        t = threading.Thread(target=self.work("alone"))
        t.start()
        t.join()
        self.assertIsNone(self.span("alone").parent)

    def test_start_failure_leaves_the_thread_as_it_was(self) -> None:
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()
        with self.tracer.start_as_current_span("request"):
            with self.assertRaises(RuntimeError):  # threads can only be started once
                t.start()
        self.assertNotIn("run", t.__dict__)

    def test_bind_by_hand(self) -> None:
        # a hand-off the hook does not know: a queue read by a thread of our own
        import queue

        q: queue.Queue[Any] = queue.Queue()
        t = threading.Thread(target=lambda: q.get()())
        t.start()  # started outside the trace: it carries nothing
        with self.tracer.start_as_current_span("request"):
            q.put(bind(self.work("queued")))
        t.join(10)
        self.assertChildOf(self.span("queued"), self.span("request"))
        self.assertEqual(bind(len).__name__, "len")
        self.assertFalse(trace.get_current_span().get_span_context().is_valid)
