"""The public surface is what docs/api.md lists, and nothing else is public-named."""

from __future__ import annotations

import configparser
import importlib
import pkgutil
import re
import unittest
from pathlib import Path

import os_trace_plugins

ROOT = Path(__file__).resolve().parents[2]
API_DOC = ROOT / "docs" / "api.md"
# packages whose modules are all internal: they export nothing
INTERNAL_PACKAGES = {"auto", "cmd", "demo", "report", "store"}


def documented() -> dict[str, set[str]]:
    """{module: names} from the first table of docs/api.md."""
    rows: dict[str, set[str]] = {}
    text = API_DOC.read_text(encoding="utf-8").split("## Entry points")[0]
    for line in text.splitlines():
        m = re.match(r"\| `(os_trace_plugins[\w.]*)` \| (.*?) \|", line)
        if m:
            rows[m.group(1)] = set(re.findall(r"`(\w+)`", m.group(2)))
    return rows


def all_modules() -> list[str]:
    names = ["os_trace_plugins"]
    for info in pkgutil.walk_packages(os_trace_plugins.__path__, "os_trace_plugins."):
        names.append(info.name)
    return names


class PublicSurfaceTest(unittest.TestCase):
    def test_documented_modules_export_what_the_page_says(self) -> None:
        rows = documented()
        self.assertIn("os_trace_plugins.hooks", rows)
        for name, promised in rows.items():
            module = importlib.import_module(name)
            with self.subTest(module=name):
                self.assertEqual(set(module.__all__), promised)
                for attr in promised:
                    self.assertTrue(hasattr(module, attr), f"{name}.{attr}")

    def test_every_other_module_is_underscore_named(self) -> None:
        rows = documented()
        for name in all_modules():
            parts = name.split(".")[1:]
            if name in rows or any(p.startswith("_") for p in parts):
                continue
            with self.subTest(module=name):
                self.assertEqual(len(parts), 1, f"{name}: an internal module must be _named")
                self.assertIn(parts[0], INTERNAL_PACKAGES | {"rpc", "db", "drivers", "wsgi",
                                                              "threads", "export"})
                if parts[0] in INTERNAL_PACKAGES:
                    self.assertEqual(importlib.import_module(name).__all__, [])

    def test_the_check_itself_sees_a_public_named_internal_module(self) -> None:
        """The walk finds nested modules (so the test above can fail)."""
        self.assertIn("os_trace_plugins.rpc._client", all_modules())
        self.assertIn("os_trace_plugins.rpc.handoff", all_modules())

    def test_entry_points_name_existing_objects(self) -> None:
        cfg = configparser.ConfigParser()
        cfg.read(ROOT / "setup.cfg")
        for group, body in cfg["options.entry_points"].items():
            for line in filter(None, (ln.strip() for ln in body.splitlines())):
                target = line.split("=", 1)[1].strip()
                module, _, attr = target.partition(":")
                with self.subTest(group=group, target=target):
                    obj = importlib.import_module(module)
                    for part in attr.split("."):
                        obj = getattr(obj, part)
