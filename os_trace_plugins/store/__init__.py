"""The embedded span store: one SQLite file, many writers, read by ``os-trace``.

``[profiler] connection_string = sqlite:///path/spans.db`` makes ``setup()``
export every span into a SQLite file in WAL mode through the batch processor
(never on the request path).  Any number of processes on the machine may
write the same file at once.  ``os-trace list`` / ``os-trace show`` read it
back (read-only: a reader never modifies stored data).

* :mod:`~os_trace_plugins.store._schema`: the versioned schema
* :mod:`~os_trace_plugins.store._exporter`: :class:`SQLiteSpanExporter`
* :mod:`~os_trace_plugins.store._reader`: :class:`StoreReader`
* :mod:`~os_trace_plugins.store._retention`: trimming by age and size

Internal: ``setup()`` and ``os-trace`` are its interface; the schema is documented
in docs/store.md for readers that query the file with SQLite directly.
"""

__all__: list[str] = []
