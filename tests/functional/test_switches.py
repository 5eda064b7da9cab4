"""Mutable switches flip live on conf.mutate_config_files(), OSProfiler or not."""

from __future__ import annotations

import logging

from oslo_config import cfg

from os_trace_plugins import _switches, opts
from os_trace_plugins._switches import SWITCHES
from tests.base import TestCase, write_config


class TestSwitches(TestCase):
    def _parsed(self, conf: cfg.ConfigOpts, path: str) -> cfg.ConfigOpts:
        opts.register_opts(conf)
        conf(args=[], project="svc", default_config_files=[path])
        return conf

    def test_mutate_config_files_flips_a_switch_live(self) -> None:
        path = self.config_file({"enabled": True, "trace_sqlalchemy": False,
                                 "sampling_rate": 1.0})
        conf = self._parsed(cfg.ConfigOpts(), path)
        _switches.bind(conf)
        seen: list[tuple[object, object]] = []
        SWITCHES.subscribe("trace_sqlalchemy", lambda old, new: seen.append((old, new)))
        self.assertFalse(SWITCHES.trace_sqlalchemy)

        write_config(path, {"enabled": True, "trace_sqlalchemy": True,
                            "sampling_rate": 0.5})
        conf.mutate_config_files()
        self.assertTrue(SWITCHES.trace_sqlalchemy)
        self.assertEqual(SWITCHES.sampling_rate, 0.5)
        self.assertEqual(seen, [(False, True)])

        write_config(path, {"enabled": True, "trace_sqlalchemy": False})
        conf.mutate_config_files()
        self.assertFalse(SWITCHES.trace_sqlalchemy)
        self.assertEqual(SWITCHES.sampling_rate, 1.0)
        self.assertEqual(seen, [(False, True), (True, False)])

    def test_switch_flips_live_where_osprofiler_owns_the_option(self) -> None:
        from osprofiler import opts as osp_opts

        path = self.config_file({"enabled": True, "trace_sqlalchemy": False})
        conf = cfg.ConfigOpts()
        osp_opts.set_defaults(conf)  # immutable trace_sqlalchemy, as in nova
        self._parsed(conf, path)
        _switches.bind(conf)
        self.assertFalse(SWITCHES.trace_sqlalchemy)

        write_config(path, {"enabled": True, "trace_sqlalchemy": True, "trace_rpc": False})
        with self.assertLogs("oslo_config.cfg", logging.WARNING) as logs:
            conf.mutate_config_files()
        # oslo.config refuses the immutable change; the switch flips anyway
        self.assertIn("Ignoring change to immutable option profiler.trace_sqlalchemy",
                      "\n".join(logs.output))
        self.assertFalse(conf.profiler.trace_sqlalchemy)
        self.assertTrue(SWITCHES.trace_sqlalchemy)
        self.assertFalse(SWITCHES.trace_rpc)

        write_config(path, {"enabled": True, "trace_sqlalchemy": False})
        conf.mutate_config_files()
        self.assertFalse(SWITCHES.trace_sqlalchemy)
        self.assertTrue(SWITCHES.trace_rpc)

    def test_set_from_code_and_bad_names(self) -> None:
        SWITCHES.set("trace_rpc", False)
        self.assertFalse(SWITCHES.trace_rpc)
        with self.assertRaises(ValueError):
            SWITCHES.set("enabled", True)  # not mutable: restart required
        with self.assertRaises(AttributeError):
            SWITCHES.no_such_switch  # noqa: B018

    def test_a_failing_listener_does_not_stop_the_others(self) -> None:
        seen: list[bool] = []

        def broken(old: object, new: object) -> None:
            raise RuntimeError("listener bug")

        SWITCHES.subscribe("trace_drivers", broken)
        SWITCHES.subscribe("trace_drivers", lambda old, new: seen.append(bool(new)))
        SWITCHES.set("trace_drivers", False)
        self.assertEqual(seen, [False])
        SWITCHES.unsubscribe("trace_drivers", broken)
