"""The issue's case through our WSGI middleware: ``POST /servers`` at 100%
while ``GET /servers/detail`` stays near 0, set centrally by a per-operation
strategy, with a signed request recorded whatever the strategy says."""

from __future__ import annotations

import webob
from opentelemetry.trace import SpanKind

from os_trace_plugins.export._sampler import ProfilerSampler
from os_trace_plugins.wsgi import signed_headers
from tests.functional.test_wsgi_middleware import KEY, MiddlewareTestBase
from tests.strategy_server import StrategyServer, per_operation


class TestPerOperationAtTheEdge(MiddlewareTestBase):

    def _servers(self, method: str, path: str, n: int, **headers: str) -> int:
        self.exporter.clear()
        for _ in range(n):
            req = webob.Request.blank(path, method=method, headers=headers)
            self.assertEqual(req.get_response(self.mw).status_int, 200)
        return len([s for s in self.spans() if s.kind == SpanKind.SERVER])

    def test_post_servers_traced_detail_not(self) -> None:
        ops = {"POST /v2.1/servers": 1.0, "GET /v2.1/servers/detail": 0.0}
        with StrategyServer(per_operation(0.0, 0.0, 0.0, ops)) as server:
            self.bind(sampler="jaeger_remote", sampling_endpoint=server.endpoint,
                      sampling_refresh_interval=0.1, sampling_rate=1.0)
            sampler = self.provider.sampler
            assert isinstance(sampler, ProfilerSampler)
            remote = sampler.root_sampler.remote
            assert remote is not None
            self.addCleanup(sampler.root_sampler.close)
            self.assertTrue(remote.wait_polls(1))
            self.assertEqual(self._servers("POST", "/v2.1/servers", 200), 200)
            self.assertEqual(self._servers("GET", "/v2.1/servers/detail", 200), 0)
            self.assertEqual(self._servers("GET", "/v2.1/flavors", 200), 0)
            signed = signed_headers(KEY)
            self.assertEqual(self._servers("GET", "/v2.1/servers/detail", 5, **signed), 5)
