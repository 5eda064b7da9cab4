"""trace_id / span_id in log lines: stdlib logging and a real oslo.log setup."""

from __future__ import annotations

import io
import logging
import os

from oslo_config import cfg
from oslo_context import context as oslo_context
from oslo_log import log as oslo_log

from os_trace_plugins import log_correlation
from tests import base


class TestFilter(base.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(logging.Formatter("%(trace_id)s %(span_id)s %(message)s"))
        self.logger = logging.getLogger(f"test.logcorr.{id(self)}")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self.handler)
        self.addCleanup(self.logger.removeHandler, self.handler)
        self.addCleanup(log_correlation.uninstall)

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def test_ids_inside_and_outside_a_span(self) -> None:
        self.assertEqual(log_correlation.install(logger=self.logger), 1)
        self.assertEqual(log_correlation.install(logger=self.logger), 0)  # idempotent
        self.logger.info("before")
        with self.tracer.start_as_current_span("op") as span:
            self.logger.info("inside")
        ctx = span.get_span_context()
        self.assertEqual(self.lines()[0], "0 0 before")
        self.assertEqual(self.lines()[1],
                         f"{ctx.trace_id:032x} {ctx.span_id:016x} inside")

    def test_extra_is_kept_and_not_an_error(self) -> None:
        log_correlation.install(logger=self.logger)
        with self.tracer.start_as_current_span("op"):
            self.logger.info("x", extra={"trace_id": "mine"})
        self.assertTrue(self.lines()[0].startswith("mine "))

    def test_child_logger_records_reach_root_handler_filter(self) -> None:
        root = logging.getLogger()
        root.addHandler(self.handler)
        self.addCleanup(root.removeHandler, self.handler)
        old_level = root.level
        root.setLevel(logging.INFO)
        self.addCleanup(root.setLevel, old_level)
        log_correlation.install(all_loggers=False)
        with self.tracer.start_as_current_span("op") as span:
            logging.getLogger("some.child.module").info("propagated")
        self.assertIn(f"{span.get_span_context().trace_id:032x}", self.lines()[-1])

    def test_uninstall(self) -> None:
        log_correlation.install(logger=self.logger)
        log_correlation.uninstall()
        self.assertEqual(self.handler.filters, [])


class TestOsloLog(base.TestCase):
    def setUp(self) -> None:
        super().setUp()
        root = logging.getLogger()
        saved = (list(root.handlers), root.level)

        def restore() -> None:
            log_correlation.uninstall()
            for h in list(root.handlers):
                root.removeHandler(h)
                if h not in saved[0]:
                    h.close()
            for h in saved[0]:
                root.addHandler(h)
            root.setLevel(saved[1])
        self.addCleanup(restore)
        self.log_file = os.path.join(self.tmpdir, "service.log")
        conf = cfg.ConfigOpts()
        oslo_log.register_options(conf)
        conf(args=[], project="os-trace-test", default_config_files=[])
        conf.set_override("log_file", self.log_file)
        conf.set_override("use_stderr", False)
        conf.set_override(
            "logging_default_format_string",
            "%(levelname)s [-] [trace %(trace_id)s %(span_id)s] %(message)s")
        conf.set_override(
            "logging_context_format_string",
            "%(levelname)s [%(request_id)s] [trace %(trace_id)s %(span_id)s] %(message)s")
        oslo_log.setup(conf, "x")
        self.assertGreater(log_correlation.install(), 0)
        self.log = oslo_log.getLogger("os_trace_test.service")

    def read(self) -> list[str]:
        for h in logging.getLogger().handlers:
            h.flush()
        with open(self.log_file, encoding="utf-8") as f:
            return f.read().splitlines()

    def test_default_and_context_format(self) -> None:
        self.log.info("no span")
        with self.tracer.start_as_current_span("compute.spawn") as span:
            self.log.info("in span")
            # a RequestContext becomes oslo.context's thread-local current one
            ctx = oslo_context.RequestContext(request_id="req-1234")
            self.addCleanup(setattr, oslo_context._request_store, "context", None)
            self.log.info("with context", context=ctx)
        sc = span.get_span_context()
        ids = f"{sc.trace_id:032x} {sc.span_id:016x}"
        lines = self.read()
        self.assertEqual(lines[0], "INFO [-] [trace 0 0] no span")
        self.assertEqual(lines[1], f"INFO [-] [trace {ids}] in span")
        self.assertEqual(lines[2], f"INFO [req-1234] [trace {ids}] with context")


class TestSetupInstallsIt(base.TestCase):
    def _handler(self) -> tuple[logging.Handler, io.StringIO]:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(trace_id)s|%(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        self.addCleanup(root.removeHandler, handler)
        return handler, stream

    def test_setup_installs_and_shutdown_removes_the_filter(self) -> None:
        import os_trace_plugins

        handler, stream = self._handler()
        conf = base.make_conf(enabled=True, connection_string="console://")
        self.assertTrue(os_trace_plugins.setup(conf))
        with self.tracer.start_as_current_span("op") as span:
            logging.getLogger().warning("hello")
        self.assertEqual(stream.getvalue().strip(),
                         f"{span.get_span_context().trace_id:032x}|hello")
        os_trace_plugins.shutdown()
        self.assertEqual(handler.filters, [])

    def test_format_string_works_with_tracing_disabled(self) -> None:
        import os_trace_plugins

        handler, stream = self._handler()
        conf = base.make_conf(enabled=False)
        self.assertFalse(os_trace_plugins.setup(conf))
        logging.getLogger().warning("still logs")  # no KeyError on %(trace_id)s
        self.assertEqual(stream.getvalue().strip(), "0|still logs")

    def test_option_off(self) -> None:
        import os_trace_plugins

        handler, _ = self._handler()
        conf = base.make_conf(enabled=True, connection_string="console://",
                              log_correlation=False)
        self.assertTrue(os_trace_plugins.setup(conf))
        self.assertEqual(handler.filters, [])


class TestOsloJSON(base.TestCase):
    def test_json_formatter_carries_the_ids(self) -> None:
        import json

        from oslo_log import formatters

        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatters.JSONFormatter())
        logger = logging.getLogger(f"test.logcorr.json.{id(self)}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        self.addCleanup(logger.removeHandler, handler)
        log_correlation.install(logger=logger)
        self.addCleanup(log_correlation.uninstall)
        adapter = oslo_log.getLogger(logger.name)
        with self.tracer.start_as_current_span("op") as span:
            adapter.info("json line", extra={"volume": "v1"})
        doc = json.loads(stream.getvalue().splitlines()[0])
        self.assertEqual(doc["extra"]["trace_id"],
                         f"{span.get_span_context().trace_id:032x}")
        self.assertEqual(doc["extra"]["volume"], "v1")
        self.assertIn("span_id", doc["extra"])
