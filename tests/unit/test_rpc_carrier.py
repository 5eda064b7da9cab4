"""The RPC carrier: W3C keys in the context dict, OSProfiler's trace_info, stripping."""

from __future__ import annotations

import unittest
import uuid
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext, TraceFlags, TraceState
from osprofiler import _utils as osp_utils

from os_trace_plugins.export._propagation import format_traceparent
from os_trace_plugins.rpc import _attrs
from os_trace_plugins.rpc import _carrier as carrier

SC = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=False,
                 trace_flags=TraceFlags(TraceFlags.SAMPLED))


class InjectTest(unittest.TestCase):

    def test_round_trip(self) -> None:
        original = {"request_id": "req-1"}
        out = carrier.inject(original, SC)
        self.assertEqual(original, {"request_id": "req-1"}, "input dict was mutated")
        self.assertEqual(out["traceparent"],
                         "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        sc, parent, problem = carrier.extract(out)
        self.assertIsNone(problem)
        assert sc is not None
        self.assertEqual((sc.trace_id, sc.span_id), (SC.trace_id, SC.span_id))
        self.assertTrue(sc.is_remote)
        self.assertTrue(sc.trace_flags.sampled)
        self.assertEqual(trace.get_current_span(parent).get_span_context(), sc)

    def test_tracestate_and_baggage(self) -> None:
        sc = SpanContext(SC.trace_id, SC.span_id, False, SC.trace_flags,
                         TraceState([("vendor", "v1")]))
        ctx = baggage.set_baggage("os_trace.sql", "1", context=Context())
        out = carrier.inject({}, sc, ctx)
        self.assertEqual(out["tracestate"], "vendor=v1")
        self.assertEqual(out["baggage"], "os_trace.sql=1")
        got, parent, problem = carrier.extract(out)
        self.assertIsNone(problem)
        assert got is not None
        self.assertEqual(got.trace_state.get("vendor"), "v1")
        self.assertEqual(baggage.get_baggage("os_trace.sql", parent), "1")

    def test_stale_keys_replaced(self) -> None:
        out = carrier.inject({"tracestate": "old=1", "baggage": "x=y"}, SC)
        self.assertNotIn("tracestate", out)
        self.assertNotIn("baggage", out)

    def test_unsampled_flag_kept(self) -> None:
        sc = SpanContext(SC.trace_id, SC.span_id, False, TraceFlags(0))
        out = carrier.inject({}, sc)
        self.assertTrue(out["traceparent"].endswith("-00"))
        got, _, _ = carrier.extract(out)
        assert got is not None
        self.assertFalse(got.trace_flags.sampled)

    def test_every_flag_bit_kept_like_the_w3c_propagator(self) -> None:
        from opentelemetry.trace.propagation.tracecontext import (
            TraceContextTextMapPropagator,
        )
        for flags in (0x00, 0x01, 0x02, 0x03):
            header = f"00-{SC.trace_id:032x}-{SC.span_id:016x}-{flags:02x}"
            got, _, _ = carrier.extract({"traceparent": header})
            assert got is not None
            theirs = trace.get_current_span(
                TraceContextTextMapPropagator().extract({"traceparent": header}))
            self.assertEqual(got, theirs.get_span_context())
            self.assertEqual(carrier.inject({}, got)["traceparent"], header)


class ExtractBadInputTest(unittest.TestCase):

    def assertRejected(self, ctxt: object) -> str:
        sc, parent, problem = carrier.extract(ctxt)
        self.assertIsNone(sc)
        self.assertFalse(trace.get_current_span(parent).get_span_context().is_valid)
        assert problem is not None
        return problem

    def test_bad_traceparents(self) -> None:
        good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        for bad in (b"00-0af7", 12, None, "x" * 10_000, good.upper(), good[:-1],
                    "00-" + "0" * 32 + "-b7ad6b7169203331-01",
                    "00-0af7651916cd43dd8448eb211c80319c-" + "0" * 16 + "-01",
                    "ff" + good[2:], good + "-extra", "0x" + good[2:],
                    "00-0af7651916cd43dd8448eb211c80319_-b7ad6b7169203331-01"):
            with self.subTest(bad=bad):
                self.assertRejected({"traceparent": bad})

    def test_future_version_with_extra_fields_accepted(self) -> None:
        sc, _, problem = carrier.extract(
            {"traceparent": "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-zz"})
        self.assertIsNone(problem)
        self.assertIsNotNone(sc)

    def test_bad_trace_info(self) -> None:
        for bad in ("x", 5, [1], {"base_id": "nope", "parent_id": "nope"},
                    {"base_id": str(uuid.uuid4())}, {"base_id": 3, "parent_id": 4}):
            with self.subTest(bad=bad):
                self.assertRejected({"trace_info": bad})

    def test_no_carrier_is_not_a_problem(self) -> None:
        for ctxt in ({}, {"request_id": "r"}, None, "str", [1]):
            self.assertEqual(carrier.extract(ctxt)[0::2], (None, None))

    def test_bad_tracestate_keeps_traceparent(self) -> None:
        sc, _, problem = carrier.extract({"traceparent": format_traceparent(SC),
                                          "tracestate": b"x"})
        self.assertIsNotNone(sc)
        self.assertIn("tracestate", problem or "")

    def test_bad_baggage_ignored(self) -> None:
        _, parent, problem = carrier.extract({"baggage": "k=" + "v" * 9000})
        self.assertEqual(baggage.get_all(parent), {})
        self.assertIn("baggage", problem or "")

    @settings(max_examples=150, deadline=None)
    @given(st.dictionaries(
        st.sampled_from(["traceparent", "tracestate", "baggage", "trace_info", "other"]),
        st.one_of(st.none(), st.integers(), st.binary(max_size=64), st.text(max_size=80),
                  st.from_regex(r"0[0-9a-f]-[0-9a-f]{32}-[0-9a-f]{16}-0[01]", fullmatch=True),
                  st.dictionaries(st.sampled_from(["base_id", "parent_id", "hmac_key"]),
                                  st.one_of(st.text(max_size=40), st.uuids().map(str),
                                            st.integers())),
                  st.lists(st.integers(), max_size=3))))
    def test_never_raises(self, ctxt: dict[str, object]) -> None:
        sc, parent, problem = carrier.extract(ctxt)
        self.assertIsInstance(parent, Context)
        if sc is not None:
            self.assertTrue(sc.is_valid)


class OSProfilerMappingTest(unittest.TestCase):

    def test_same_ids_as_osprofiler_otlp_driver(self) -> None:
        base, parent = str(uuid.uuid4()), str(uuid.uuid4())
        sc = carrier.from_trace_info({"base_id": base, "parent_id": parent,
                                      "hmac_key": "SECRET"})
        assert isinstance(sc, SpanContext)
        self.assertEqual(sc.trace_id, osp_utils.uuid_to_int128(base))
        self.assertEqual(sc.span_id, osp_utils.shorten_id(parent))
        self.assertTrue(sc.trace_flags.sampled)

    def test_w3c_wins_over_trace_info(self) -> None:
        ctxt = {"traceparent": format_traceparent(SC),
                "trace_info": {"base_id": str(uuid.uuid4()), "parent_id": str(uuid.uuid4())}}
        sc, _, _ = carrier.extract(ctxt)
        assert sc is not None
        self.assertEqual(sc.trace_id, SC.trace_id)

    def test_bad_w3c_falls_back_to_trace_info(self) -> None:
        base = str(uuid.uuid4())
        sc, _, problem = carrier.extract({"traceparent": "garbage",
                                          "trace_info": {"base_id": base, "parent_id": base}})
        assert sc is not None
        self.assertEqual(sc.trace_id, uuid.UUID(base).int)
        self.assertIsNone(problem)


class StripTest(unittest.TestCase):

    def test_strip_copies(self) -> None:
        shared = {"a": 1, "traceparent": "x", "trace_info": {}}
        one = SimpleNamespace(ctxt=shared)
        carrier.strip(one)
        self.assertEqual(one.ctxt, {"a": 1, "trace_info": {}})
        self.assertIn("traceparent", shared, "a shared (fanout) dict was mutated")
        carrier.strip(one, carrier.ALL_KEYS)
        self.assertEqual(one.ctxt, {"a": 1})

    def test_strip_leaves_clean_dict_alone(self) -> None:
        clean = {"a": 1}
        one = SimpleNamespace(ctxt=clean)
        carrier.strip(one)
        self.assertIs(one.ctxt, clean)


class AttributesTest(unittest.TestCase):

    def test_messaging_system_from_url(self) -> None:
        for scheme, system in (("rabbit", "rabbitmq"), ("kombu", "rabbitmq"),
                               ("kafka", "kafka"), ("fake", "oslo.messaging.fake"),
                               ("rabbit+ssl", "rabbitmq")):
            transport = SimpleNamespace(_driver=SimpleNamespace(
                _url=SimpleNamespace(transport=scheme)))
            self.assertEqual(_attrs.system_of_transport(transport), system)

    def test_remote_error_type(self) -> None:
        import oslo_messaging as om
        exc = om.RemoteError("InstanceNotFound", "gone", "tb")
        self.assertEqual(_attrs.exception_type(exc), "InstanceNotFound")
        self.assertEqual(_attrs.exception_type(ValueError()), "ValueError")
        remote = type("ValueError_Remote", (ValueError,), {})
        self.assertEqual(_attrs.exception_type(remote()), "ValueError")
