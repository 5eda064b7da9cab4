"""Context into threads: work handed to executors, threads and greenthreads
stays on the request's trace, with no change in the service.

- :class:`~os_trace_plugins.threads._hook.ThreadsHook`: the hook (entry point
  ``threads``; ``os_trace_plugins_threads`` for ``opentelemetry-instrument``).
- :func:`bind`: the manual way, for a hand-off the hook does not know
  (a custom pool, a callback queue): ``queue.put(bind(fn))``.

See docs/threads.md.
"""

from os_trace_plugins.threads._carry import Bound, bind
from os_trace_plugins.threads._hook import ThreadsHook, ThreadsInstrumentor

__all__ = ["Bound", "bind", "ThreadsHook", "ThreadsInstrumentor"]
