"""The process part of the resource, re-stamped at export time after a fork.

The SDK fixes a provider's :class:`~opentelemetry.sdk.resources.Resource` when
the provider is built, so a worker that oslo.service (or uwsgi, or
``multiprocessing``) forks after ``setup()`` would keep naming the master's
``process.pid`` and ``service.instance.id``; and a provider built by the SDK
configurator from ``OTEL_*`` (``opentelemetry-instrument``) names
``unknown_service`` unless ``OTEL_SERVICE_NAME`` is set.  Public API only:
:class:`StampingExporter` wraps the exporter of ``connection_string`` and,
on the export thread, gives each span a resource merged with this process's
attributes (a new ``ReadableSpan`` through its public constructor, only when
the resource actually differs, so a process that never forked pays one
cached identity lookup per batch).  ``os.register_at_fork`` renews the
process attributes in the child.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = ["ProcessIdentity", "StampingExporter", "instance_id"]

_UNKNOWN = "unknown_service"


def instance_id(host: str, pid: int) -> str:
    """``host:pid:random``: unique per process, even when pids are reused."""
    return f"{host}:{pid}:{uuid.uuid4().hex[:8]}"


class ProcessIdentity:
    """``process.pid`` and ``service.instance.id`` of the current process.

    ``service`` replaces ``service.name`` only where the provider's resource
    has none of its own (``unknown_service...``) or ``force`` is set (an
    explicit ``[profiler] service_name``).
    """

    def __init__(self, service: str, host: str, force_service: bool = False) -> None:
        self.service = service
        self.host = host
        self.force_service = force_service
        self.pid = 0
        self.instance = ""
        self.generation = 0
        self._lock = threading.Lock()
        self.renew()
        _register_fork_renewal(self)

    def renew(self) -> None:
        """Take the current pid and a new instance id (in a forked child)."""
        with self._lock:
            self.pid = os.getpid()
            self.instance = instance_id(self.host, self.pid)
            self.generation += 1

    def stamp(self, resource: Resource) -> Resource:
        """``resource`` with this process's attributes (itself if already so)."""
        attrs = dict(resource.attributes)
        name = str(attrs.get("service.name") or "")
        wanted: dict[str, Any] = {"process.pid": self.pid,
                                  "service.instance.id": self.instance}
        if self.force_service or not name or name.startswith(_UNKNOWN):
            wanted["service.name"] = self.service
        wanted.setdefault("host.name", attrs.get("host.name") or self.host)
        if all(attrs.get(k) == v for k, v in wanted.items()):
            return resource
        attrs.update(wanted)
        return Resource(attrs, resource.schema_url)


_identities: list[ProcessIdentity] = []
_fork_registered = False
_fork_lock = threading.Lock()


def _renew_all() -> None:
    for identity in list(_identities):
        identity.renew()


def _register_fork_renewal(identity: ProcessIdentity) -> None:
    global _fork_registered
    with _fork_lock:
        _identities[:] = [identity]  # one live identity per process (setup is once)
        if not _fork_registered and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_renew_all)
            _fork_registered = True


class StampingExporter(SpanExporter):
    """Exports through ``delegate`` with every span's resource stamped."""

    def __init__(self, delegate: SpanExporter, identity: ProcessIdentity) -> None:
        self.delegate = delegate
        self.identity = identity
        self._cache: dict[int, tuple[Resource, Resource, int]] = {}

    def _stamped(self, resource: Resource) -> Resource:
        hit = self._cache.get(id(resource))
        generation = self.identity.generation
        if hit is not None and hit[0] is resource and hit[2] == generation:
            return hit[1]
        stamped = self.identity.stamp(resource)
        if len(self._cache) > 32:
            self._cache.clear()
        self._cache[id(resource)] = (resource, stamped, generation)
        return stamped

    def _restamp(self, span: ReadableSpan) -> ReadableSpan:
        resource = span.resource
        stamped = self._stamped(resource)
        if stamped is resource:
            return span
        return ReadableSpan(
            name=span.name, context=span.context, parent=span.parent,
            resource=stamped, attributes=span.attributes, events=span.events,
            links=span.links, kind=span.kind, status=span.status,
            start_time=span.start_time, end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.delegate.export([self._restamp(s) for s in spans])

    def shutdown(self) -> None:
        self.delegate.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.delegate.force_flush(timeout_millis)
