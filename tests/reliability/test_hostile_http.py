"""Hostile HTTP trace headers and signatures at the API edge (5. Hostile input).

The real ``TracingMiddleware`` is called with a plain WSGI environ built from
generated headers: garbage, forgeries of both signature formats (another
key, a genuine signature moved to another traceparent, flags or timestamp
edited, a MAC digit flipped, stale, from the future), unsigned traceparents,
1 MB values, and genuine signatures as the control.  Promises: no exception
reaches the app's caller, no forged header is trusted (no continued parent,
no kept trace id, no SQL flag), every genuine one is, and no value in a span
is longer than the documented cap whatever the client sent.
"""

from __future__ import annotations

import io
import logging
import time
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import baggage

from os_trace_plugins._bounds import MAX_PATH_LENGTH
from os_trace_plugins._flagged import SQL_BAGGAGE_KEY
from os_trace_plugins.wsgi import TracingMiddleware
from os_trace_plugins.wsgi import _signing as signing
from tests import base
from tests.figures import report
from tests.reliability._hostile import Tally, longest_value, settings
from tests.secret_values import HMAC_KEY, HMAC_KEY_OLD

MB = 1 << 20
TRUSTED = ("signed", "osprofiler", "unsigned-trusted")
hexes = st.text("0123456789abcdef", min_size=1, max_size=40)
junk = st.one_of(st.text(max_size=80), st.text(st.characters(max_codepoint=255), max_size=80),
                 st.sampled_from(["", " ", "00-", "v1;", "x" * MB, "\x00" * 300]))
tps = st.builds(lambda t, s, f: f"00-{t:032x}-{s:016x}-{f:02x}",
                st.integers(0, (1 << 128) - 1), st.integers(0, (1 << 64) - 1),
                st.integers(0, 255))
keys = st.sampled_from([HMAC_KEY, HMAC_KEY_OLD])


def _edit_sig(sig: str, how: str, tp: str) -> str:
    parts = dict(p.split("=", 1) for p in sig.split(";")[1:])
    if how == "flags":
        parts["f"] = "root,sql" if parts["f"] != "root,sql" else "sql"
    elif how == "time":
        parts["t"] = str(int(parts["t"]) + 1)
    elif how == "mac":
        parts["s"] = ("0" if parts["s"][0] != "0" else "1") + parts["s"][1:]
    elif how == "upper":
        parts["s"] = parts["s"].upper()
    return "v1;" + ";".join(f"{k}={v}" for k, v in parts.items())


@st.composite
def requests(draw: Any) -> tuple[str, dict[str, str]]:
    """(kind, headers): kind is "genuine", "forged", "unsigned" or "junk"."""
    tp = draw(tps.filter(lambda t: "-0000000000000000-" not in t and "-" + "0" * 32 not in t))
    now = time.time()
    kind = draw(st.sampled_from(["genuine", "genuine-osp", "wrong-key", "moved", "edited",
                                 "stale", "future", "osp-wrong-key", "osp-edited",
                                 "unsigned", "junk"]))
    headers: dict[str, str] = {}
    if kind == "genuine":
        headers = {"traceparent": tp, signing.SIGNATURE_HEADER: signing.sign_traceparent(
            draw(keys), tp, sql=draw(st.booleans()), root=draw(st.booleans()), now=now)}
    elif kind == "genuine-osp":
        info, mac = signing.osprofiler_pack(
            {"base_id": str(draw(st.uuids())), "parent_id": str(draw(st.uuids()))}, draw(keys))
        headers = {signing.X_TRACE_INFO: info, signing.X_TRACE_HMAC: mac}
    elif kind == "wrong-key":
        key = draw(st.text(min_size=1, max_size=20).filter(
            lambda k: k.strip() not in (HMAC_KEY, HMAC_KEY_OLD)))
        headers = {"traceparent": tp, signing.SIGNATURE_HEADER: signing.sign_traceparent(
            key, tp, sql=True, now=now)}
    elif kind == "moved":
        other = draw(tps.filter(lambda t: t != tp))
        headers = {"traceparent": other, signing.SIGNATURE_HEADER: signing.sign_traceparent(
            draw(keys), tp, now=now)}
    elif kind == "edited":
        sig = signing.sign_traceparent(draw(keys), tp, now=now)
        headers = {"traceparent": tp, signing.SIGNATURE_HEADER: _edit_sig(
            sig, draw(st.sampled_from(["flags", "time", "mac", "upper"])), tp)}
    elif kind in ("stale", "future"):
        at = now - 7200 if kind == "stale" else now + 3600
        headers = {"traceparent": tp, signing.SIGNATURE_HEADER: signing.sign_traceparent(
            draw(keys), tp, sql=True, now=at)}
    elif kind == "osp-wrong-key":
        info, mac = signing.osprofiler_pack({"base_id": str(uuid.uuid4())},
                                            draw(st.text(min_size=1, max_size=20)))
        headers = {signing.X_TRACE_INFO: info, signing.X_TRACE_HMAC: mac}
    elif kind == "osp-edited":
        info, mac = signing.osprofiler_pack({"base_id": str(uuid.uuid4())}, draw(keys))
        i = draw(st.integers(0, len(info) - 1))
        info = info[:i] + ("A" if info[i] != "A" else "B") + info[i + 1:]
        headers = {signing.X_TRACE_INFO: info, signing.X_TRACE_HMAC: mac}
    elif kind == "unsigned":
        headers = {"traceparent": tp}
    else:
        for name in draw(st.sets(st.sampled_from(
                ["traceparent", "tracestate", "baggage", signing.SIGNATURE_HEADER,
                 signing.X_TRACE_INFO, signing.X_TRACE_HMAC]), min_size=1)):
            headers[name] = draw(junk)
    if draw(st.booleans()):  # baggage trying to switch SQL tracing on
        headers["baggage"] = f"{SQL_BAGGAGE_KEY}=1,user=" + draw(st.sampled_from(["a", "x" * MB]))
    for name in draw(st.sets(st.sampled_from(["Host", "User-Agent", "tracestate"]))):
        headers[name] = draw(junk)
    return kind, headers


def environ_of(headers: dict[str, str], method: str = "GET", path: str = "/v2.1/servers",
               query: str = "") -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": query,
        "SERVER_NAME": "api", "SERVER_PORT": "8774", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "192.0.2.7", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO()}
    for name, value in headers.items():
        env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


class HostileHeadersTest(base.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.bind(hmac_keys=f"{HMAC_KEY}, {HMAC_KEY_OLD}")
        signing.BAD_INPUT.reset()
        self.seen: list[dict[str, str]] = []

        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            self.seen.append(dict(baggage.get_all()))
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]

        self.app = TracingMiddleware(app, conf=self.conf)

    def quiet(self) -> None:
        """The SDK logs each bad tracestate member: not what is measured here."""
        for name in ("opentelemetry", "os_trace_plugins"):
            logger = logging.getLogger(name)
            self.addCleanup(logger.setLevel, logger.level)
            logger.setLevel(logging.CRITICAL)

    def call(self, env: dict[str, Any]) -> Any:
        self.exporter.clear()
        self.seen.clear()
        statuses: list[str] = []
        body = self.app(env, lambda status, headers, exc=None: statuses.append(status))
        assert b"".join(body) == b"ok" and statuses == ["200 OK"], statuses
        spans = self.spans()
        assert len(spans) <= 1, spans
        return spans[0] if spans else None  # None: an unsampled parent was followed

    @pytest.mark.slow
    def test_property_no_forged_header_is_trusted(self) -> None:
        tally = Tally()
        self.quiet()

        @settings(2000)
        @given(case=requests())
        def run(case: tuple[str, dict[str, str]]) -> None:
            kind, headers = case
            tally.add(kind)
            with tally.case(headers):
                span = self.call(environ_of(headers))
                sql = self.seen[0].get(SQL_BAGGAGE_KEY) == "1"
                if span is None:  # the claimed "not sampled" decision was followed
                    trusted = True
                else:
                    trust = (span.attributes or {}).get("os_trace.trust")
                    claimed = headers.get("traceparent", "")
                    kept_id = claimed[3:35] == f"{span.context.trace_id:032x}"
                    trusted = trust in TRUSTED or span.parent is not None or kept_id
                    tally.high("longest_value", longest_value([span]))
                if kind.startswith("genuine"):
                    tally.add("genuine_trusted", int(trusted))
                    if kind == "genuine":
                        tally.add("genuine_sql_asked", int("sql" in headers[
                            signing.SIGNATURE_HEADER].split(";")[2]))
                        tally.add("genuine_sql_flagged", int(sql))
                else:
                    tally.add("forged_trusted", int(trusted))
                    tally.add("sql_forced", int(sql))

        run()
        genuine = tally["genuine"] + tally["genuine-osp"]
        report("5 hostile input", "HTTP trace headers and signatures (middleware)",
               cases=tally.cases, genuine_trusted=f"{tally['genuine_trusted']}/{genuine}",
               forged_or_unsigned=tally.cases - genuine, forged_trusted=tally["forged_trusted"],
               sql_tracing_forced=tally["sql_forced"], exceptions_escaped=tally.escaped,
               longest_span_value=tally["longest_value"])
        self.assertEqual(tally.escaped, 0, tally.examples)
        self.assertGreaterEqual(tally.cases, 2000)
        self.assertEqual(tally["forged_trusted"], 0)
        self.assertEqual(tally["sql_forced"], 0)
        self.assertEqual(tally["genuine_trusted"], genuine)
        self.assertEqual(tally["genuine_sql_flagged"], tally["genuine_sql_asked"])
        self.assertGreater(min(tally[k] for k in ("moved", "edited", "stale", "junk")), 50)
        self.assertLessEqual(tally["longest_value"], MAX_PATH_LENGTH)

    def test_one_megabyte_headers_are_not_copied_into_spans(self) -> None:
        huge = "a" * MB
        headers = {name: huge for name in (
            "Host", "User-Agent", "traceparent", "tracestate", "baggage",
            signing.SIGNATURE_HEADER, signing.X_TRACE_INFO, signing.X_TRACE_HMAC,
            "X-Openstack-Request-Id")}
        env = environ_of(headers, method="P" * MB, path="/" + huge, query="token=" + huge)
        env["REMOTE_ADDR"] = huge
        env["openstack.request_id"] = huge
        span = self.call(env)
        assert span is not None
        total = sum(len(v) for v in (span.attributes or {}).values() if isinstance(v, str))
        report("5 hostile input", "1 MB in every header, the path and the method",
               header_bytes=len(headers) * MB, longest_span_value=longest_value([span]),
               span_attribute_chars=total)
        self.assertLessEqual(longest_value([span]), MAX_PATH_LENGTH)
        self.assertLess(total, 4 * MAX_PATH_LENGTH)


class SignatureCheckerTest(base.TestCase):
    """The checkers alone, with the keys: arbitrary text never verifies, never raises."""

    def test_property_checkers(self) -> None:
        tally = Tally()
        keys = (HMAC_KEY, HMAC_KEY_OLD)
        anything = st.one_of(st.none(), junk, tps)

        @settings(4000)
        @given(tp=anything, sig=st.one_of(anything, st.builds(
            lambda t, f, s: f"v1;t={t};f={f};s={s}", st.integers(-5, 10**13),
            st.sampled_from(["", "sql", "root,sql", "x"]), hexes)),
            info=anything, mac=st.one_of(anything, hexes))
        def run(tp: Any, sig: Any, info: Any, mac: Any) -> None:
            with tally.case((tp, sig)):
                tally.add("trusted", int(signing.verify_traceparent(tp, sig, keys) is not None))
            with tally.case((info, mac)):
                tally.add("trusted", int(signing.osprofiler_verify(info, mac, keys) is not None))

        run()
        report("5 hostile input", "signature checkers on arbitrary text", cases=tally.cases,
               forged_traces_trusted=tally["trusted"], exceptions_escaped=tally.escaped)
        self.assertEqual(tally.escaped, 0, tally.examples)
        self.assertEqual(tally["trusted"], 0)
        self.assertGreaterEqual(tally.cases, 8000)
