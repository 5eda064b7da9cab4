"""HMAC signing: our traceparent signature and OSProfiler's format, bad input."""

from __future__ import annotations

import base64
import json
import logging
import uuid

from osprofiler import _utils as osp_utils
from osprofiler import web as osp_web

from os_trace_plugins.wsgi import _signing as signing
from tests import base
from tests.secret_values import HMAC_KEY, MARK

TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class KeyParsingTest(base.TestCase):
    def test_spaces_and_empty_entries(self) -> None:
        self.assertEqual(signing.parse_keys(" a , ,b,, a ,c "), ("a", "b", "c"))
        self.assertEqual(signing.parse_keys(""), ())
        self.assertEqual(signing.parse_keys(None), ())
        self.assertEqual(signing.parse_keys(" , ,"), ())
        self.assertEqual(signing.parse_keys(["x ", "", "y"]), ("x", "y"))

    def test_public_default_key_is_dropped_and_logged_once(self) -> None:
        signing._warned_public.clear()
        with self.assertLogs("os_trace_plugins.wsgi._signing", logging.WARNING) as logs:
            self.assertEqual(signing.parse_keys("SECRET_KEY,real"), ("real",))
            self.assertEqual(signing.parse_keys("SECRET_KEY"), ())
        self.assertEqual(len(logs.records), 1)
        self.assertIn("SECRET_KEY", logs.output[0])

    def test_default_key_alone_is_an_info_line_not_a_warning(self) -> None:
        """OSProfiler's default hmac_keys (SECRET_KEY alone) is in every service
        that registers OSProfiler's options: one INFO line, no WARNING."""
        signing._warned_public.clear()
        with self.assertLogs("os_trace_plugins.wsgi._signing", logging.INFO) as logs:
            self.assertEqual(signing.parse_keys("SECRET_KEY"), ())
            self.assertEqual(signing.parse_keys("SECRET_KEY"), ())
        self.assertEqual([r.levelno for r in logs.records], [logging.INFO])


class TraceparentSignatureTest(base.TestCase):
    def test_round_trip_and_flags(self) -> None:
        sig = signing.sign_traceparent("k", TP, sql=True, now=1000)
        got = signing.verify_traceparent(TP, sig, ("k",), max_age=60, now=1010)
        self.assertEqual(got, signing.SignedTraceparent(sql=True, root=False))
        plain = signing.sign_traceparent("k", TP, now=1000)
        self.assertEqual(signing.verify_traceparent(TP, plain, ("k",), 60, now=1000),
                         signing.SignedTraceparent(sql=False, root=False))

    def test_rotation_any_key_matches(self) -> None:
        sig = signing.sign_traceparent("old", TP)
        self.assertIsNotNone(signing.verify_traceparent(TP, sig, ("new", "old"), 60))

    def test_signature_is_bound_to_traceparent_flags_and_key(self) -> None:
        sig = signing.sign_traceparent("k", TP, now=1000)
        other_tp = TP.replace("b7ad", "b7ae")
        self.assertIsNone(signing.verify_traceparent(other_tp, sig, ("k",), 60, now=1000))
        # flags cannot be added after signing
        forged = sig.replace("f=;", "f=sql;")
        self.assertIsNone(signing.verify_traceparent(TP, forged, ("k",), 60, now=1000))
        # replayed to a server holding other keys
        self.assertIsNone(signing.verify_traceparent(TP, sig, ("other",), 60, now=1000))
        # sampled bit is covered too
        unsampled = TP[:-2] + "00"
        self.assertIsNone(signing.verify_traceparent(unsampled, sig, ("k",), 60, now=1000))

    def test_stale_and_future_signatures(self) -> None:
        sig = signing.sign_traceparent("k", TP, now=1000)
        self.assertIsNone(signing.verify_traceparent(TP, sig, ("k",), 60, now=1061))
        self.assertIsNotNone(signing.verify_traceparent(TP, sig, ("k",), 0, now=10 ** 9))
        self.assertIsNone(signing.verify_traceparent(
            TP, sig, ("k",), 60, now=1000 - signing.MAX_SKEW - 1))

    def test_bad_input_never_raises_never_trusted(self) -> None:
        good = signing.sign_traceparent("k", TP)
        bad = ["", "v1", "v2;t=1;f=;s=" + "0" * 64, "v1;t=x;f=;s=" + "0" * 64,
               "v1;t=1;s=" + "0" * 64, "v1;t=1;f=;s=abc", good[:-1],
               good + "0", "v1;t=1;t=2;f=;s=" + "0" * 64, "x" * 5000,
               "v1;t=١٢٣;f=;s=" + "0" * 64, good.replace("v1;", "v1;;"),
               "\x00\xff;;;===", "v1;t=99999999999999999999;f=;s=" + "0" * 64]
        for value in bad:
            with self.subTest(value=value[:40]):
                self.assertIsNone(signing.verify_traceparent(TP, value, ("k",), 3600))
        self.assertIsNone(signing.verify_traceparent(TP, good, (), 3600))
        self.assertIsNone(signing.verify_traceparent(None, good, ("k",), 3600))
        self.assertIsNone(signing.verify_traceparent("x" * 1000, good, ("k",), 3600))

    def test_bad_input_logs_are_rate_limited(self) -> None:
        signing.BAD_INPUT.reset()
        with self.assertLogs("os_trace_plugins.wsgi._signing", logging.WARNING) as logs:
            for _ in range(50):
                signing.verify_traceparent(TP, "v1;t=1;f=;s=" + "1" * 64, ("k",), 0)
        self.assertEqual(len(logs.records), 1)


class OSProfilerFormatTest(base.TestCase):
    def _ids(self) -> dict[str, str]:
        return {"base_id": str(uuid.uuid4()), "parent_id": str(uuid.uuid4())}

    def test_osprofiler_packed_headers_verify(self) -> None:
        ids = self._ids()
        info, mac = osp_utils.signed_pack(ids, "k")
        got = signing.osprofiler_verify(info.decode(), mac, ("x", "k"))
        assert got is not None
        self.assertEqual((got.base_id, got.parent_id, got.key),
                         (ids["base_id"], ids["parent_id"], "k"))

    def test_our_pack_is_what_osprofiler_accepts(self) -> None:
        ids = self._ids()
        info, mac = signing.osprofiler_pack(ids, "k")
        self.assertEqual(osp_utils.signed_unpack(info, mac, ["k"]),
                         dict(ids, hmac_key="k"))
        headers = signing.osprofiler_headers("k")
        data = osp_utils.signed_unpack(headers[osp_web.X_TRACE_INFO],
                                       headers[osp_web.X_TRACE_HMAC], ["k"])
        assert data is not None
        self.assertEqual(data["base_id"], data["parent_id"])

    def test_id_mapping_matches_osprofiler_otlp_driver(self) -> None:
        ids = self._ids()
        sc = signing.osprofiler_span_context(
            signing.OSProfilerTrace(ids["base_id"], ids["parent_id"], "k"))
        self.assertEqual(sc.trace_id, osp_utils.uuid_to_int128(ids["base_id"]))
        self.assertEqual(sc.span_id, osp_utils.shorten_id(ids["parent_id"]))
        self.assertTrue(sc.trace_flags.sampled)
        self.assertTrue(sc.is_remote)

    def test_bad_osprofiler_input(self) -> None:
        def packed(obj: object) -> tuple[str, str]:
            raw = base64.urlsafe_b64encode(json.dumps(obj).encode()).decode()
            return raw, osp_utils.generate_hmac(raw, "k")

        def signed_raw(raw: str) -> tuple[str, str]:
            return raw, osp_utils.generate_hmac(raw, "k")

        ids = self._ids()
        good_info, good_mac = signing.osprofiler_pack(ids, "k")
        cases = {
            "forged": (good_info, "0" * 40),
            "other key": signing.osprofiler_pack(ids, "other"),
            "truncated": (good_info[:-4], good_mac),
            "oversized": signed_raw("A" * 5000),
            "non-base64": signed_raw("!!!not base64***"),
            "non-json": signed_raw(base64.urlsafe_b64encode(b"\xff\xfe{").decode()),
            "json list": packed([1, 2]),
            "extra keys": packed(dict(ids, hmac_key="k", x=1)),
            "no base_id": packed({"parent_id": ids["parent_id"]}),
            "not uuid": packed({"base_id": "x", "parent_id": "y"}),
            "int ids": packed({"base_id": 1, "parent_id": 2}),
            "empty mac": (good_info, "   "),
            "huge mac": (good_info, "a" * 4000),
            "non-ascii": ("ü" * 10, "é" * 40),
        }
        for name, (info, mac) in cases.items():
            with self.subTest(name):
                self.assertIsNone(signing.osprofiler_verify(info, mac, ("k",)))
        self.assertIsNone(signing.osprofiler_verify(good_info, good_mac, ()))
        self.assertIsNone(signing.osprofiler_verify(None, None, ("k",)))


class SignedHeadersTest(base.TestCase):
    def test_current_span_is_signed(self) -> None:
        with self.tracer.start_as_current_span("caller") as span:
            headers = signing.signed_headers("k", sql=True)
        sc = span.get_span_context()
        self.assertEqual(headers["traceparent"],
                         f"00-{sc.trace_id:032x}-{sc.span_id:016x}-01")
        got = signing.verify_traceparent(headers["traceparent"],
                                         headers[signing.SIGNATURE_HEADER], ("k",), 60)
        self.assertEqual(got, signing.SignedTraceparent(sql=True, root=False))
        secret = signing.signed_headers(HMAC_KEY)
        self.assertNotIn(MARK, " ".join(f"{k} {v}" for k, v in secret.items()))

    def test_without_span_a_fresh_root(self) -> None:
        a, b = signing.signed_headers("k"), signing.signed_headers("k")
        self.assertNotEqual(a["traceparent"], b["traceparent"])
        got = signing.verify_traceparent(a["traceparent"], a[signing.SIGNATURE_HEADER],
                                         ("k",), 60)
        self.assertEqual(got, signing.SignedTraceparent(sql=False, root=True))
