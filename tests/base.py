"""The test base: fresh globals, fresh hooks, fresh config for every test.

Every test gets ``self.conf`` (a new ConfigOpts with ``[profiler]``
registered), ``self.exporter`` (the SDK's in-memory exporter behind a
synchronous processor, installed as the global provider) and helpers that
assert on finished spans.  tearDown unloads the hooks, resets the switches,
the safety guard's memory and the OpenTelemetry globals.
"""

from __future__ import annotations

import os
import tempfile
import unittest
from collections.abc import Iterable
from typing import Any

from opentelemetry import baggage, context, propagate, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once
from oslo_config import cfg

import os_trace_plugins
from os_trace_plugins import _hooks, _safety, _setup, _switches, opts
from os_trace_plugins.export import _propagation as propagation
from os_trace_plugins.export import _sampler as sampler

__all__ = ["TestCase", "reset_globals", "make_conf", "write_config"]


def reset_globals() -> None:
    """Forget the global tracer provider and propagator (test-only)."""
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]
    propagate.set_global_textmap(propagation.PROPAGATOR)


def make_conf(**profiler: Any) -> cfg.ConfigOpts:
    """A parsed ConfigOpts with [profiler] registered and overrides applied."""
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf(args=[], project="os-trace-test", default_config_files=[])
    for name, value in profiler.items():
        conf.set_override(name, value, group="profiler")
    return conf


def write_config(path: str, profiler: dict[str, Any], **sections: dict[str, Any]) -> str:
    """Write an ini file with a [profiler] section (and others); return the path."""
    lines = ["[profiler]"] + [f"{k} = {_ini(v)}" for k, v in profiler.items()]
    for name, values in sections.items():
        lines += ["", f"[{name}]"] + [f"{k} = {_ini(v)}" for k, v in values.items()]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _ini(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


class TestCase(unittest.TestCase):
    """Base class: in-memory spans, clean globals, clean hooks and switches."""

    #: sampler for the test provider; None = always on (parent-based live ratio
    #: when ``use_live_sampler`` is set)
    use_live_sampler = False

    def setUp(self) -> None:
        super().setUp()
        os_trace_plugins.shutdown()
        reset_globals()
        _switches.SWITCHES.reset()
        _safety.reset()
        self.tmpdir = tempfile.mkdtemp(prefix="os-trace-test-")
        self.conf = make_conf()
        self.exporter = InMemorySpanExporter()
        kwargs: dict[str, Any] = {}
        if self.use_live_sampler:
            kwargs["sampler"] = sampler.build_sampler()
        self.provider = TracerProvider(**kwargs)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        trace.set_tracer_provider(self.provider)
        self.tracer = self.provider.get_tracer("tests")
        self._token = context.attach(context.Context())
        self.addCleanup(self._cleanup)

    def _cleanup(self) -> None:
        context.detach(self._token)
        os_trace_plugins.shutdown()
        if isinstance(self.provider.sampler, sampler.ProfilerSampler):
            self.provider.sampler.root_sampler.close()  # no poller outlives its test
        _hooks.unload_hooks()
        _switches.unbind()
        _switches.SWITCHES.reset()
        _safety.reset()
        self.provider.shutdown()
        reset_globals()
        _setup._state.clear()

    # -- helpers ---------------------------------------------------------
    def config_file(self, profiler: dict[str, Any], name: str = "test.conf",
                    **sections: dict[str, Any]) -> str:
        return write_config(os.path.join(self.tmpdir, name), profiler, **sections)

    def bind(self, **profiler: Any) -> cfg.ConfigOpts:
        """Apply overrides to ``self.conf`` and load the live switches from it."""
        for name, value in profiler.items():
            self.conf.set_override(name, value, group="profiler")
        _switches.bind(self.conf)
        return self.conf

    def spans(self) -> list[ReadableSpan]:
        self.provider.force_flush()
        return list(self.exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        found = [s for s in self.spans() if s.name == name]
        if len(found) != 1:
            self.fail(f"expected one span named {name!r}, got {len(found)}: "
                      f"{[s.name for s in self.spans()]}")
        return found[0]

    def assertChildOf(self, child: ReadableSpan, parent: ReadableSpan) -> None:
        assert child.parent is not None, f"{child.name} has no parent"
        assert child.context is not None and parent.context is not None
        self.assertEqual(child.context.trace_id, parent.context.trace_id,
                         f"{child.name} is not in {parent.name}'s trace")
        self.assertEqual(child.parent.span_id, parent.context.span_id,
                         f"{child.name}'s parent is not {parent.name}")

    def assertOneTrace(self, spans: Iterable[ReadableSpan]) -> None:
        ids = {s.context.trace_id for s in spans if s.context is not None}
        self.assertEqual(len(ids), 1, f"spans span {len(ids)} traces")

    @staticmethod
    def with_baggage(key: str, value: str) -> object:
        """Attach baggage ``key=value`` to the current context; returns the token."""
        return context.attach(baggage.set_baggage(key, value))
