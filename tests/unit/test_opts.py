"""The [profiler] group: registration, OSProfiler coexistence, the sample config."""

from __future__ import annotations

import subprocess
import sys
import unittest

from oslo_config import cfg

from os_trace_plugins import opts


class TestOpts(unittest.TestCase):
    def test_osprofiler_names_keep_their_meaning(self) -> None:
        names = {o.dest for o in opts.list_opts()[0][1]}
        for name in ("enabled", "hmac_keys", "trace_sqlalchemy", "trace_requests",
                     "connection_string", "trace_rpc", "trace_notifications",
                     "trace_drivers", "trace_wsgi", "sampling_rate", "service_name",
                     "trace_sqlalchemy_parameters", "sql_max_statement_length"):
            self.assertIn(name, names)
        self.assertEqual(opts.list_opts()[0][0], "profiler")

    def test_incident_switches_are_mutable_and_defaults_are_safe(self) -> None:
        by_name = {o.dest: o for o in opts.list_opts()[0][1]}
        for name in ("trace_sqlalchemy", "trace_rpc", "trace_notifications",
                     "trace_drivers", "trace_wsgi", "trace_requests", "sampling_rate"):
            self.assertTrue(by_name[name].mutable, name)
            self.assertIn(name, opts.MUTABLE_SWITCHES)
        self.assertFalse(by_name["enabled"].default)
        self.assertFalse(by_name["trace_sqlalchemy"].default)
        self.assertFalse(by_name["trace_sqlalchemy_parameters"].default)
        self.assertTrue(by_name["hmac_keys"].secret)

    def test_register_twice_is_harmless(self) -> None:
        conf = cfg.ConfigOpts()
        opts.register_opts(conf)
        opts.register_opts(conf)
        conf(args=[])
        self.assertFalse(conf.profiler.enabled)
        self.assertEqual(conf.profiler.connection_string, "sqlite://")
        self.assertEqual(opts.foreign_opts(conf), set())

    def test_loads_after_osprofiler_registered_its_options(self) -> None:
        from osprofiler import opts as osp_opts

        conf = cfg.ConfigOpts()
        osp_opts.set_defaults(conf)  # what nova does at import time
        opts.register_opts(conf)  # no DuplicateOptError
        conf(args=[])
        self.assertIn("trace_sqlalchemy", opts.foreign_opts(conf))
        self.assertNotIn("trace_rpc", opts.foreign_opts(conf))
        self.assertTrue(conf.profiler.trace_rpc)
        self.assertEqual(conf.profiler.connection_string, "messaging://")

    def test_set_defaults(self) -> None:
        conf = cfg.ConfigOpts()
        opts.set_defaults(conf, sampling_rate=0.25, service_name="nova-api")
        conf(args=[])
        self.assertEqual(conf.profiler.sampling_rate, 0.25)
        self.assertEqual(conf.profiler.service_name, "nova-api")

    def test_oslo_config_generator_prints_the_section(self) -> None:
        gen = [sys.executable, "-c",
               "import sys; from oslo_config.generator import main; sys.exit(main())",
               "--namespace", "os_trace_plugins"]
        out = subprocess.run(gen, capture_output=True, text=True, timeout=60, check=True)
        self.assertIn("[profiler]", out.stdout)
        self.assertIn("#trace_sqlalchemy = false", out.stdout)
        self.assertIn("# Note: This option can be changed without restarting.", out.stdout)
        self.assertIn("#connection_string = sqlite://", out.stdout)
