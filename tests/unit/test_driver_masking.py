"""Rendering of driver arguments: secrets masked at any depth, values bounded."""

from __future__ import annotations

import dataclasses
import unittest

from hypothesis import given
from hypothesis import strategies as st

from os_trace_plugins.drivers import _masking as masking
from os_trace_plugins.drivers._functions import members


class TestMasking(unittest.TestCase):
    def test_secret_names(self) -> None:
        for name in ("password", "admin_password", "auth_token", "X-Auth-Token",
                     "secret", "private_key", "credentials", "passphrase",
                     "encryption_key", "chap_secret", "os_passwd"):
            with self.subTest(name=name):
                self.assertTrue(masking.is_secret_name(name))
                self.assertEqual(masking.render("s3cr3t", name), "***")
        for name in ("instance", "host", "volume_id", "size"):
            self.assertFalse(masking.is_secret_name(name))

    def test_nested_dicts_and_lists(self) -> None:
        value = {"driver_volume_type": "iscsi",
                 "data": {"target_iqn": "iqn.x", "auth_password": "p1",
                          "nested": [{"token": "t1", "ok": 1}]}}
        text = masking.render(value, "connection_info")
        self.assertIn("'target_iqn': 'iqn.x'", text)
        self.assertIn("'ok': 1", text)
        for leaked in ("p1", "t1"):
            self.assertNotIn(leaked, text)

    def test_url_password_and_pairs_in_text(self) -> None:
        self.assertEqual(masking.render("mysql+pymysql://nova:pw@db/nova"),
                         "'mysql+pymysql://nova:***@db/nova'")

        @dataclasses.dataclass
        class Creds:
            user: str
            password: str

        text = masking.render(Creds("admin", "hunter2"))
        self.assertIn("user='admin'", text)
        self.assertNotIn("hunter2", text)

    def test_bounded(self) -> None:
        self.assertLessEqual(len(masking.render("x" * 10_000, limit=64)), 64 + 30)
        big = {f"k{i}": i for i in range(1000)}
        self.assertIn("(+980 items)", masking.render(big, limit=100_000))
        deep: dict[str, object] = {}
        cur = deep
        for _ in range(50):
            cur["d"] = {}
            cur = cur["d"]  # type: ignore[assignment]
        self.assertIn("<dict>", masking.render(deep, limit=10_000))
        self.assertEqual(masking.render(b"\x00" * 10), "<10 bytes>")

    def test_broken_mapping(self) -> None:
        class Bad(dict):  # type: ignore[type-arg]
            def items(self):  # type: ignore[no-untyped-def]
                raise RuntimeError("no")
        self.assertEqual(masking.render(Bad()), "<Bad>")

    @given(st.dictionaries(st.sampled_from(["password", "token", "secret", "host"]),
                           st.text(min_size=6, alphabet="abcdefXYZ"), min_size=1))
    def test_secret_values_never_appear(self, d: dict[str, str]) -> None:
        text = masking.render({"outer": d}, limit=10_000)
        for key, value in d.items():
            if key != "host" and value != d.get("host"):
                self.assertNotIn(repr(value), text)


class TestMembers(unittest.TestCase):
    def test_selection(self) -> None:
        class A:
            def pub(self) -> None: ...
            def _priv(self) -> None: ...
            def __dunder__(self) -> None: ...
            @staticmethod
            def st() -> None: ...
            @classmethod
            def cm(cls) -> None: ...
            @property
            def prop(self) -> int:
                return 1

        class B(A):
            def pub(self) -> None: ...

        found = members(B, private=False, static=False, classmethods=False)
        self.assertEqual(sorted(found), ["pub"])
        self.assertIs(found["pub"][1], B.__dict__["pub"])
        found = members(B, private=True, static=True, classmethods=True)
        self.assertEqual(sorted(found), ["_priv", "cm", "pub", "st"])
        found = members(B, private=False, static=False, classmethods=False,
                        names=["__dunder__", "prop"])
        self.assertEqual(sorted(found), ["__dunder__"])
