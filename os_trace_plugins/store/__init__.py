"""The embedded span store: one SQLite file, many writers, read by ``os-trace``.

``[profiler] connection_string = sqlite:///path/spans.db`` makes ``setup()``
export every span into a SQLite file in WAL mode through the batch processor
(never on the request path).  Any number of processes on the machine may
write the same file at once.  ``os-trace list`` / ``os-trace show`` read it
back (read-only: a reader never modifies stored data).

* :mod:`~os_trace_plugins.store.schema`: the versioned schema
* :mod:`~os_trace_plugins.store.exporter`: :class:`SQLiteSpanExporter`
* :mod:`~os_trace_plugins.store.reader`: :class:`StoreReader`
* :mod:`~os_trace_plugins.store.retention`: trimming by age and size
"""

from __future__ import annotations

from os_trace_plugins.store.schema import SCHEMA_VERSION, StoreError

__all__ = ["SCHEMA_VERSION", "StoreError"]
