"""``setup()`` and ``shutdown()``: the only code that touches SDK globals.

Called once at service start (after the config files are parsed)::

    import os_trace_plugins
    os_trace_plugins.setup(CONF, service="nova-compute", host=CONF.host)

It builds the TracerProvider (or reuses a real one the host installed), the
parent-based sampler (``[profiler] sampler``: ratio or Jaeger remote), the
W3C propagators and a batch processor over the exporter named by
``connection_string``, then loads the hooks.  Bad
configuration never takes a service down: it is logged in one line naming the
option and what is accepted, and the service runs with tracing off.

A collector that is down when the service starts is *not* bad configuration:
one WARNING says so and tracing stays on; spans are exported once it is back
(export failures are counted and logged once per outage:
:mod:`os_trace_plugins.export._outage`).  Exit is bounded: pending spans are
flushed within ``[profiler] shutdown_timeout`` at ``shutdown()``, at
interpreter exit and before an oslo.service worker leaves through
``os._exit`` (:mod:`os_trace_plugins.export._exit`).  ``shutdown()`` puts
back the global propagator the host had before ``setup()``.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import socket
import sys
import threading
import uuid
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from oslo_config import cfg

from os_trace_plugins import _hooks, _safety, _switches, log_correlation, opts
from os_trace_plugins._version import __version__
from os_trace_plugins.export import _exporters as exporters
from os_trace_plugins.export import _ids as ids
from os_trace_plugins.export import _propagation as propagation
from os_trace_plugins.export import _sampler as sampler
from os_trace_plugins.export._bounded import BoundedProcessor
from os_trace_plugins.export._outage import AccountingExporter, OutageLog

__all__ = ["setup", "shutdown", "is_enabled", "build_resource", "flush_before_exit"]

LOG = logging.getLogger("os_trace_plugins")

_lock = threading.RLock()
_state: dict[str, Any] = {}
_atexit_registered = False


def build_resource(service: str, host: str, instance: str | None = None) -> Resource:
    """service.name, service.instance.id, host.name and friends."""
    return Resource.create({
        "service.name": service,
        "service.instance.id": instance or f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        "host.name": host,
        "process.pid": os.getpid(),
        "telemetry.distro.name": "os_trace_plugins",
        "telemetry.distro.version": __version__,
    })


def _program_name() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name or "openstack-service"


def _service_name(configured: str | None, service: str | None) -> str:
    """``[profiler] service_name``, else ``OTEL_SERVICE_NAME``, else the
    service passed to ``setup()``, else the program name."""
    return (configured or os.environ.get("OTEL_SERVICE_NAME") or service
            or _program_name())


def _stamped(exporter: Any, service: str, host: str, force: bool) -> tuple[Any, str]:
    """Our exporter behind the per-process resource stamp (see auto.resource),
    and this process's instance id: a worker forked after setup() names its
    own pid and instance id, and a provider built from OTEL_* without a
    service name gets ours."""
    from os_trace_plugins.auto import _resource as resource
    identity = resource.ProcessIdentity(service, host, force_service=force)
    return resource.StampingExporter(exporter, identity), identity.instance


def _host_provider() -> TracerProvider | None:
    """A real SDK provider the host installed before us, if any."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        return provider
    return None


def _new_provider(resource: Resource, service: str) -> TracerProvider:
    """Our provider: the live root sampler (ratio or Jaeger remote, polled for
    ``service``), and the id generator that lets a signed root request keep
    its trace id (:mod:`os_trace_plugins.export._ids`)."""
    # shutdown_on_exit=False: the SDK's own atexit flush has no deadline on
    # every SDK release; ours (_at_exit) has ``shutdown_timeout``
    return TracerProvider(resource=resource, sampler=sampler.build_sampler(service),
                          id_generator=ids.RequestableIdGenerator(),
                          shutdown_on_exit=False)


def _explain_host_provider(provider: TracerProvider, group: Any, service: str) -> None:
    """One line saying what of ``[profiler]`` a host's provider does not follow.

    Its sampler and id generator are the host's: the SDK fixes them at
    construction and every tracer keeps its own reference, so they are not
    replaced here.  The public way to have them is the SDK's configurator
    (``OTEL_TRACES_SAMPLER=os_trace_plugins``,
    ``OTEL_PYTHON_ID_GENERATOR=os_trace_plugins``: docs/configuration.md).
    """
    host_sampler = provider.sampler
    ours_sampler = isinstance(host_sampler, sampler.ProfilerSampler)
    ours_ids = ids.honoured(provider)
    rate = group.sampling_rate
    if isinstance(host_sampler, sampler.ProfilerSampler):
        # built by the SDK's configurator before [profiler] was read
        host_sampler.root_sampler.set_service(service)
    if ours_sampler and ours_ids:
        LOG.info("os_trace_plugins: reusing the TracerProvider the host installed "
                 "(its sampler and id generator are ours); adding export to %s",
                 group.connection_string)
        return
    ignored = []
    if not ours_sampler:
        ignored.append(f"[profiler] sampling_rate = {rate} does not apply (the host's "
                       f"sampler {provider.sampler.get_description()} decides; set "
                       "OTEL_TRACES_SAMPLER=os_trace_plugins where the host builds it)")
    if not ours_ids:
        ignored.append("signed root requests start a new trace linked to the signed "
                       "one (set OTEL_PYTHON_ID_GENERATOR=os_trace_plugins to keep "
                       "their trace id)")
    level = logging.WARNING if not ours_sampler and rate < 1.0 else logging.INFO
    LOG.log(level, "os_trace_plugins: reusing the TracerProvider the host installed, "
            "adding export to %s; %s", group.connection_string, "; ".join(ignored))


def is_enabled() -> bool:
    """Whether ``setup()`` turned tracing on in this process."""
    return bool(_state.get("enabled"))


def _bad_value(group: Any) -> str | None:
    """What is wrong with the ``[profiler]`` values, or None.

    Beyond oslo.config's own type checks: an empty value (``export_timeout =``
    reads as None), a non-finite number (``inf``, ``nan`` pass a ``min``
    check) and a ``$name`` interpolation naming no option, each of which
    used to fail later with a traceback.
    """
    for opt in opts.list_opts()[0][1]:
        try:
            value = getattr(group, opt.dest)
        except (cfg.Error, ValueError) as exc:
            return str(exc)
        if value is None and opt.default is not None:
            return f"{opt.dest} is empty (default: {opt.default})"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{opt.dest} = {value} is not a finite number"
    return None


def setup(conf: Any = None, service: str | None = None, host: str | None = None) -> bool:
    """Turn tracing on from the ``[profiler]`` group; return whether it is on.

    Idempotent: a second call returns the first call's answer.
    """
    with _lock:
        if "enabled" in _state:
            return bool(_state["enabled"])
        try:
            enabled = _setup(conf, service, host)
        except Exception as exc:  # never take the service down
            LOG.error("os_trace_plugins: tracing left off, setup failed: %s", exc,
                      exc_info=exc)
            _teardown()
            enabled = False
        _state["enabled"] = enabled
        return enabled


def _setup(conf: Any, service: str | None, host: str | None) -> bool:
    if conf is None:
        conf = cfg.CONF
    opts.register_opts(conf)
    group = getattr(conf, opts.GROUP)
    problem = _bad_value(group)
    if problem is not None:  # one clear line, no traceback
        LOG.error("os_trace_plugins: tracing is off: bad [profiler] value: %s", problem)
        return False
    if group.log_correlation:
        # Even with tracing off: a format string naming %(trace_id)s must not
        # fail on every line; outside a span the ids read "0".
        _safety.safe_call("installing log correlation", log_correlation.install)
        _state["logs"] = True
    if not group.enabled:
        LOG.debug("os_trace_plugins: [profiler] enabled = false, nothing installed")
        return False
    try:
        target = exporters.check_connection_string(group.connection_string, reach=False)
        exporter = exporters.build_exporter(
            group.connection_string, headers=dict(group.otlp_headers or {}),
            timeout=group.export_timeout,
            store_options={"max_age_hours": group.store_max_age_hours,
                           "max_size_mb": group.store_max_size_mb})
    except exporters.ConfigError as exc:
        LOG.error("os_trace_plugins: tracing is off: %s", exc)
        return False
    try:  # down now is not a configuration error: the exporter retries
        exporters.probe(target)
    except exporters.Unreachable as exc:
        LOG.warning("os_trace_plugins: tracing is on; %s", exc)

    _switches.bind(conf)
    _state["conf"] = conf
    service_name = _service_name(group.service_name, service)
    host_name = host or socket.gethostname()
    stamped, instance = _stamped(exporter, service_name, host_name,
                                 bool(group.service_name))
    accounting = AccountingExporter(stamped, OutageLog(group.connection_string),
                                    inner=exporter)
    processor = BoundedProcessor(accounting, group.max_queue_size, group.export_timeout,
                                 group.shutdown_timeout)
    provider = _host_provider()
    if provider is not None:
        _explain_host_provider(provider, group, service_name)
        _state["owns_provider"] = False
    else:
        provider = _new_provider(build_resource(service_name, host_name, instance),
                                 service_name)
        trace.set_tracer_provider(provider)
        if trace.get_tracer_provider() is not provider:  # someone raced us
            provider.shutdown()
            provider = _host_provider()
            if provider is None:
                LOG.error("os_trace_plugins: tracing is off: another non-SDK "
                          "TracerProvider is installed globally")
                return False
            _state["owns_provider"] = False
        else:
            _state["owns_provider"] = True
    provider.add_span_processor(processor)
    _state["provider"] = provider
    _state["processor"] = processor
    _state["textmap"] = propagate.get_global_textmap()
    propagate.set_global_textmap(propagation.PROPAGATOR)
    _register_at_exit()
    _hooks.load_hooks(conf, provider)
    LOG.info("os_trace_plugins: tracing on for %s, exporting to %s",
             service_name, group.connection_string)
    return True


def _register_at_exit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(_at_exit)
        _atexit_registered = True


def _at_exit() -> None:
    """Interpreter exit: flush within ``shutdown_timeout`` (our processor only;
    a host's provider runs its own atexit after this one, LIFO)."""
    processor = _state.get("processor")
    if processor is not None:
        _safety.safe_call("flushing spans at exit", processor.shutdown)


def flush_before_exit() -> bool:
    """Flush pending spans within ``shutdown_timeout``; for a process about to
    leave through ``os._exit`` (oslo.service's workers), where no atexit runs."""
    processor = _state.get("processor")
    if processor is None:
        return True
    return bool(_safety.safe_call("flushing spans before the worker exits",
                                  processor.flush_before_exit, default=False))


def _teardown() -> None:
    _hooks.unload_hooks()
    if _state.pop("logs", False):
        _safety.safe_call("removing log correlation", log_correlation.uninstall)
    _switches.unbind()
    processor = _state.pop("processor", None)
    provider = _state.pop("provider", None)
    owns = _state.pop("owns_provider", False)
    _state.pop("conf", None)
    ours = getattr(provider, "sampler", None)
    if isinstance(ours, sampler.ProfilerSampler):  # stop a Jaeger remote poller
        _safety.safe_call("stopping the sampling poller", ours.root_sampler.close)
    textmap = _state.pop("textmap", None)
    if textmap is not None and propagate.get_global_textmap() is propagation.PROPAGATOR:
        propagate.set_global_textmap(textmap)  # the host's, unless it set another since
    try:
        if processor is not None:
            processor.shutdown()  # within shutdown_timeout
        if owns and provider is not None:
            provider.shutdown()  # the other processors a host added to ours
    except Exception as exc:  # pragma: no cover - exporter bugs
        LOG.warning("os_trace_plugins: flushing spans at shutdown failed: %s", exc)


def shutdown() -> None:
    """Unload the hooks, flush pending spans and detach; idempotent.

    The OpenTelemetry API lets a global provider be set only once per
    process, so a provider we created stays installed (shut down, it drops
    spans); a later ``setup()`` in the same process reuses nothing of it.
    """
    with _lock:
        if "enabled" not in _state:
            return
        _teardown()
        _switches.SWITCHES.reset()
        _state.clear()
