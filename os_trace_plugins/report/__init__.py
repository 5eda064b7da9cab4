"""Reports of one trace: terminal tree, JSON, self-contained HTML, Graphviz DOT.

:mod:`~os_trace_plugins.report._model` builds a :class:`Trace` (the span tree)
from the embedded store or from an OTLP/JSON file; each renderer takes a
``Trace`` and returns text.

Internal: ``os-trace show`` is its interface.
"""

__all__: list[str] = []
