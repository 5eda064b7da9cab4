"""The one patching mechanism of every hook: wrapt wrappers behind post-import hooks.

A hook never imports the library it instruments.  :class:`Patch` registers a
wrapt post-import hook for the module that defines the target, and installs
a ``wrapt.FunctionWrapper`` (``wrapt.wrap_object``) when the *service*
imports that module (at once when it is already imported).  So ``opentelemetry-instrument`` or
``setup()`` can run before the service's own imports without changing what
the service imports or selects at start-up (oslo.service's backend, eventlet
monkey-patching, a SQLAlchemy version).

The wrapper has wrapt's signature ``wrapper(wrapped, instance, args,
kwargs)``.  :meth:`Patch.remove` takes away only our own wrapper: when it is
still the outermost attribute the original is put back; when someone wrapped
on top of it meanwhile (contrib's instrumentation, a test double), ours stays
in their chain but goes inert (it calls straight through, for good: applying
the patch again wraps anew), so their wrapper keeps working.  A post-import hook
that has not fired yet is cancelled.

Usage (inside :meth:`os_trace_plugins.hooks.Hook._instrument`)::

    self.patch("oslo_messaging.transport", "Transport._send", send_wrapper)

The wrapper runs under no guard of ours: it is the hook's job to keep its own
work under :mod:`os_trace_plugins._safety` and to call ``wrapped`` outside it.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

import wrapt

from os_trace_plugins import _safety

__all__ = ["Patch", "Wrapper", "when_imported"]

LOG = logging.getLogger(__name__)

#: wrapt's wrapper signature: (wrapped, instance, args, kwargs) -> result
Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def _resolve(module: Any, path: str) -> tuple[Any, str]:
    """The object that holds the last attribute of ``path``, and its name."""
    parts = path.split(".")
    owner = module
    for part in parts[:-1]:
        owner = getattr(owner, part)
    return owner, parts[-1]


def when_imported(module: str, callback: Callable[[Any], None]) -> Callable[[], None]:
    """Call ``callback(module)`` once ``module`` is imported (now, if it is).

    Returns a cancel function: once called, a callback that has not run yet
    never will.  The callback runs under the safety guard.
    """
    state = {"cancelled": False}

    def hook(mod: Any) -> None:
        if not state["cancelled"]:
            _safety.safe_call(f"post-import hook for {module}", callback, mod)

    def cancel() -> None:
        state["cancelled"] = True

    if module in sys.modules and sys.modules[module] is not None:
        hook(sys.modules[module])
    else:
        wrapt.register_post_import_hook(hook, module)
    return cancel


class _Application(list):  # type: ignore[type-arg]
    """One application of a patch: its wrapper runs only while it is ``live``.

    A patch removed while buried under someone else's wrapper stays in their
    chain; applying the patch again must not wake that old wrapper up, so
    each application has a flag of its own.

    Why a list: it is the wrapt ``enabled`` object of the FunctionWrapper.
    wrapt tests a non-callable ``enabled`` for truth *in C* on every call and,
    when it is false, calls the original straight through; a non-empty list
    is true, an empty one false, and neither runs a Python frame.  So the
    liveness check costs no frame of ours (a closure checking a flag cost
    one Python call per intercepted call, on every hook).
    """

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__((True,))

    @property
    def live(self) -> bool:
        return bool(self)

    def kill(self) -> None:
        """From now on wrapt calls the original without our wrapper."""
        self.clear()


#: wrappers of ours left inert under someone else's: (owner, name, handle,
#: original, inherited); peeled off when they come back to the top
_INERT: list[tuple[Any, str, Any, Any, bool]] = []
_INERT_LOCK = threading.Lock()


def _is(current: Any, handle: Any, original: Any) -> bool:
    """``current`` is ``handle``, or ``handle`` bound to the class (what a
    foreign unwrap that read the attribute through the class puts back)."""
    return current is handle or (isinstance(current, wrapt.BoundFunctionWrapper)
                                 and getattr(current, "__wrapped__", None) is original)


def _peel(owner: Any, name: str) -> None:
    """Take away inert wrappers of ours that are the attribute again.

    Someone wrapped on top of us, we were removed (inert, buried), then they
    unwrapped: their ``__wrapped__`` (our dead wrapper) is the attribute
    again, and nothing of ours would ever remove it (contrib's requests
    ``uninstrument()`` does this).  Before wrapping anew, and when removing,
    put back what our dead wrapper wrapped, so our uninstrument restores the
    original method whatever the other party did.
    """
    with _INERT_LOCK:
        peeled = True
        while peeled:
            peeled = False
            current = owner.__dict__.get(name) if hasattr(owner, "__dict__") else None
            for entry in _INERT:
                o, n, handle, original, inherited = entry
                if o is owner and n == name and _is(current, handle, original):
                    _INERT.remove(entry)
                    if inherited:
                        delattr(owner, name)
                    else:
                        setattr(owner, name, original)
                    peeled = True
                    break


class Patch:
    """One wrapt wrapper on ``module``'s attribute ``path`` (``"Class.method"``)."""

    def __init__(self, module: str, path: str, wrapper: Wrapper) -> None:
        self.module = module
        self.path = path
        self._wrapper = wrapper
        self._current: _Application | None = None
        #: the installed wrapt FunctionWrapper, once the module is imported
        self.handle: Any = None
        self._owner: Any = None
        self._name = ""
        self._inherited = False
        self._cancel: Callable[[], None] | None = None
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        """Whether the patch is applied (or waiting for its module's import)."""
        return self._current is not None

    @property
    def applied(self) -> bool:
        """Whether the wrapper is in place (False until the module is imported)."""
        return self.handle is not None

    def apply(self) -> None:
        """Wrap now if the module is imported, else as soon as it is."""
        with self._lock:
            if self._current is not None:
                return
            application = self._current = _Application()
        self._cancel = when_imported(self.module, lambda m: self._wrap(m, application))

    def _wrap(self, module: Any, application: _Application) -> None:
        with self._lock:
            if self._current is not application or self.handle is not None:
                return
            owner, name = _resolve(module, self.path)
            _peel(owner, name)
            self._inherited = isinstance(owner, type) and name not in owner.__dict__
            # wrap_function_wrapper, plus wrapt's ``enabled`` (see _Application)
            self.handle = wrapt.wrap_object(owner, name, wrapt.FunctionWrapper,
                                            (self._wrapper, application))
            self._owner, self._name = owner, name

    def remove(self) -> None:
        """Take our wrapper away (or make it inert under someone else's)."""
        with self._lock:
            application, self._current = self._current, None
            if application is not None:
                application.kill()
            if self._cancel is not None:
                self._cancel()
                self._cancel = None
            handle: Any = self.handle
            owner: Any = self._owner
            name = self._name
            self.handle = self._owner = None
        if handle is None:
            return
        original = handle.__wrapped__
        current = owner.__dict__.get(name) if hasattr(owner, "__dict__") else None
        if not _is(current, handle, original):
            LOG.debug("os_trace_plugins: %s.%s was wrapped again after us; our wrapper "
                      "stays in the chain, inert", self.module, self.path)
            with _INERT_LOCK:
                _INERT.append((owner, name, handle, original, self._inherited))
            return
        if self._inherited:
            delattr(owner, name)  # uncover the base class's attribute again
        else:
            setattr(owner, name, original)
        _peel(owner, name)  # an older dead wrapper of ours right under it
