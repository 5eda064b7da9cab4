"""Reports of one trace: terminal tree, JSON, self-contained HTML, Graphviz DOT.

:mod:`~os_trace_plugins.report.model` builds a :class:`Trace` (the span tree)
from the embedded store or from an OTLP/JSON file; each renderer takes a
``Trace`` and returns text.
"""

from __future__ import annotations

from os_trace_plugins.report.model import ReportError, Span, Trace, category

__all__ = ["ReportError", "Span", "Trace", "category"]
