"""Live values of the mutable ``[profiler]`` options, as plain attributes.

Hot paths (one RPC message, one SQL statement) must not pay an oslo.config
lookup (microseconds each); they read ``SWITCHES.trace_rpc``, a plain
attribute.  :func:`bind` loads the values once and installs a mutate hook, so
``conf.mutate_config_files()`` (SIGHUP) updates them and calls the listeners of
the switches that changed: the SQL hook attaches or detaches its listeners
there.

OSProfiler's options are immutable.  In a process where OSProfiler registered
them first, ``mutate_config_files()`` logs "Ignoring change to immutable
option" and keeps the old value; a mutable twin cannot be registered and the
original cannot be unregistered.  For those names the hook re-reads the config
files into a private ConfigOpts holding our mutable definitions, through
oslo.config's public parsing API, so the switch still flips live.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from oslo_config import cfg

from os_trace_plugins import _safety, opts

__all__ = ["SWITCHES", "Switches", "bind", "unbind"]

LOG = logging.getLogger(__name__)

Listener = Callable[[Any, Any], None]


class Switches:
    """The current value of every mutable option; defaults until bound."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Back to the option defaults (tests, shutdown); the listeners of the
        switches that change are called, as by :meth:`set` (a hook that
        detaches its wrappers while a switch is off must follow it)."""
        for opt in opts.list_opts()[0][1]:
            if opt.dest in opts.MUTABLE_SWITCHES:
                if opt.dest in self.__dict__:
                    self.set(opt.dest, opt.default)
                else:  # first call, from __init__
                    object.__setattr__(self, opt.dest, opt.default)

    def __getattr__(self, name: str) -> Any:  # only for names never set
        raise AttributeError(f"no mutable [profiler] option named {name!r}")

    def subscribe(self, name: str, listener: Listener) -> None:
        """Call ``listener(old, new)`` whenever switch ``name`` changes."""
        if name not in opts.MUTABLE_SWITCHES:
            raise ValueError(f"{name!r} is not a mutable [profiler] option")
        with self._lock:
            self._listeners.setdefault(name, []).append(listener)

    def unsubscribe(self, name: str, listener: Listener) -> None:
        with self._lock:
            lst = self._listeners.get(name, [])
            if listener in lst:
                lst.remove(listener)

    def set(self, name: str, value: Any) -> None:
        """Switch from code (the small API of each hook builds on this)."""
        self.update({name: value})

    def update(self, values: dict[str, Any]) -> None:
        """Set every value first, then call the listeners of those that
        changed: a listener reading several switches (the sampler's
        ``sampler`` + ``sampling_endpoint``) sees the new set, never half of it."""
        for name in values:
            if name not in opts.MUTABLE_SWITCHES:
                raise ValueError(f"{name!r} is not a mutable [profiler] option")
        changed = []
        for name, value in values.items():
            old = getattr(self, name)
            object.__setattr__(self, name, value)
            if old != value:
                changed.append((name, old, value))
        for name, old, value in changed:
            with self._lock:
                listeners = list(self._listeners.get(name, ()))
            for listener in listeners:
                _safety.safe_call(f"switch listener for {name}", listener, old, value)


SWITCHES = Switches()

_bound: dict[int, tuple[cfg.ConfigOpts, Callable[..., None]]] = {}


def _read(conf: cfg.ConfigOpts) -> dict[str, Any]:
    group = getattr(conf, opts.GROUP)
    return {name: getattr(group, name) for name in opts.MUTABLE_SWITCHES}


def _read_fresh_foreign(conf: cfg.ConfigOpts, names: set[str]) -> dict[str, Any]:
    """Parse the config files again with our mutable definitions of ``names``."""
    shadow = cfg.ConfigOpts()
    shadow.register_opts(
        [o for o in opts.list_opts()[0][1] if o.dest in names], group=opts.GROUP)
    shadow(args=[], project=conf.project, prog=conf.prog,
           default_config_files=list(conf.config_file or []),
           default_config_dirs=list(conf.config_dir and [conf.config_dir] or []),
           use_env=False)
    group = getattr(shadow, opts.GROUP)
    return {name: getattr(group, name) for name in names}


def bind(conf: cfg.ConfigOpts) -> None:
    """Load the switches from ``conf`` and follow its mutations."""
    opts.register_opts(conf)
    SWITCHES.update(_read(conf))
    if id(conf) in _bound:
        return

    def on_mutate(c: cfg.ConfigOpts, fresh: dict[Any, Any]) -> None:
        values = _read(c)
        foreign = opts.foreign_opts(c) & set(opts.MUTABLE_SWITCHES)
        if foreign:
            values.update(_safety.safe_call(
                "re-reading OSProfiler-owned [profiler] options",
                _read_fresh_foreign, c, foreign, default={}))
        changed = {k: v for k, v in values.items() if getattr(SWITCHES, k) != v}
        for name, value in changed.items():
            LOG.info("[profiler] %s is now %s", name, value)
        SWITCHES.update(changed)

    conf.register_mutate_hook(on_mutate)
    _bound[id(conf)] = (conf, on_mutate)


def unbind() -> None:
    """Stop following config mutations (shutdown, tests)."""
    for conf, hook in _bound.values():
        try:
            conf._mutate_hooks.discard(hook)
        except Exception:  # pragma: no cover
            pass
    _bound.clear()
