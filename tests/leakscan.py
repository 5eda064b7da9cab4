"""The session-wide secret scan (docs/reliability.md, "6. Secrets").

Every span exported in the pytest process, every row of every span store the
run wrote (subprocesses included) and every OTLP payload the test receiver
got is searched for the secrets of :mod:`tests.secret_values`.  A secret
found fails the run (exit status 1, findings printed), whatever the tests
themselves said.

How it sees everything, cheaply:

* exporters: ``export`` of the SDK's ``InMemorySpanExporter`` and
  ``ConsoleSpanExporter``, our ``SQLiteSpanExporter`` and the OTLP HTTP and
  gRPC exporters (wrapped when their module is imported, never importing
  them) is wrapped to scan each span before it is exported.  A span costs one
  join of its string values and one substring search for
  :data:`~tests.secret_values.MARK`;
* stores: the run's temporary files all live under one session directory
  (``TMPDIR`` and :data:`tempfile.tempdir` point there, so subprocesses and
  pytest's ``tmp_path`` use it too); at session end every SQLite file in it
  with a ``spans`` table is read (read-only) row by row, as is every store a
  ``StoreReader`` opened elsewhere or a test passed to :func:`watch`;
* OTLP: tests/otlp_receiver.py hands each request body to
  :func:`scan_payload` (protobuf keeps strings as raw UTF-8).

The session directory is removed at the end of a clean run and kept (its
path printed) when the scan found something.  ``OS_TRACE_LEAKSCAN=0``
switches the whole scan off (say so when quoting figures).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from tests.secret_values import MARK, SECRETS

__all__ = ["Scanner", "SCANNER", "watch", "scan_payload", "install", "finish",
           "session_root", "SPAN_TABLE_COLUMNS"]

#: the temporary directory the run started with, before TMPDIR pointed at
#: the run's own
SYSTEM_TMPDIR_ENV = "OS_TRACE_SYSTEM_TMPDIR"

_SQLITE_MAGIC = b"SQLite format 3\x00"
#: the text columns of the store's ``spans`` table that reach an operator
SPAN_TABLE_COLUMNS = ("name", "service", "status_message", "attributes", "events",
                      "links", "resource", "scope")


def _strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, (tuple, list)):
        for v in value:
            if isinstance(v, str):
                out.append(v)


def _attribute_strings(attributes: Mapping[str, Any] | None, out: list[str]) -> None:
    if not attributes:
        return
    for key, value in attributes.items():
        out.append(key)
        _strings(value, out)


class Scanner:
    """Counts what it scanned and remembers where a secret showed up."""

    def __init__(self, secrets: Mapping[str, str], mark: str = MARK) -> None:
        self.secrets = dict(secrets)
        self.mark = mark
        for name, value in self.secrets.items():
            if mark not in value:
                raise ValueError(f"secret {name!r} does not contain the mark {mark!r}")
        self.spans = 0
        self.rows = 0
        self.stores = 0
        self.payloads = 0
        self.scan_errors = 0
        #: (where, secret name or "mark", excerpt)
        self.findings: list[tuple[str, str, str]] = []
        self._resources: dict[int, tuple[Any, str]] = {}
        self._stores_seen: set[tuple[str, int, int]] = set()

    # -- text ------------------------------------------------------------------
    def scan_text(self, where: str, text: str) -> bool:
        """Record the secrets in ``text``; True when one (or the mark) is there."""
        at = text.find(self.mark)
        if at < 0:
            return False
        names = [n for n, v in self.secrets.items() if v in text]
        for name in names or ["mark"]:
            start = max(0, text.find(self.secrets.get(name, self.mark)) - 40)
            excerpt = text[start:start + 120].replace("\x00", " | ")
            if len(self.findings) < 200:
                self.findings.append((where, name, excerpt))
        return True

    # -- spans -------------------------------------------------------------------
    def _resource_text(self, resource: Any) -> str:
        cached = self._resources.get(id(resource))
        if cached is not None and cached[0] is resource:
            return cached[1]
        out: list[str] = []
        _attribute_strings(getattr(resource, "attributes", None), out)
        text = "\x00".join(out)
        if len(self._resources) > 256:
            self._resources.clear()
        self._resources[id(resource)] = (resource, text)
        return text

    def span_text(self, span: Any) -> str:
        """Every string an exporter would send for ``span``, joined."""
        out = [span.name or ""]
        status = getattr(span, "status", None)
        description = getattr(status, "description", None)
        if description:
            out.append(description)
        _attribute_strings(span.attributes, out)
        for event in span.events or ():
            out.append(event.name)
            _attribute_strings(event.attributes, out)
        for link in span.links or ():
            _attribute_strings(link.attributes, out)
        out.append(self._resource_text(span.resource))
        return "\x00".join(out)

    def scan_spans(self, spans: Iterable[Any], where: str) -> None:
        for span in spans:
            self.spans += 1
            self.scan_text(f"{where}: span {span.name!r}", self.span_text(span))

    # -- OTLP payloads -------------------------------------------------------------
    def scan_payload(self, body: bytes, where: str = "OTLP receiver") -> None:
        self.payloads += 1
        self.scan_text(where, body.decode("utf-8", "replace"))

    # -- stores ----------------------------------------------------------------------
    def scan_store(self, path: str) -> None:
        """Every row of the ``spans`` table of the store at ``path`` (read-only)."""
        try:
            st = os.stat(path)
            wal = os.stat(path + "-wal").st_size if os.path.exists(path + "-wal") else 0
        except OSError:
            return
        key = (os.path.abspath(path), st.st_size + wal, st.st_mtime_ns)
        if key in self._stores_seen:
            return
        self._stores_seen.add(key)
        try:
            conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro",
                                   uri=True, timeout=2)
        except sqlite3.Error:
            return
        conn.text_factory = lambda b: b.decode("utf-8", "replace")  # damaged pages too
        try:
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "spans" not in tables:
                return
            columns = {r[1] for r in conn.execute("PRAGMA table_info(spans)")}
            wanted = [c for c in SPAN_TABLE_COLUMNS if c in columns]
            if not wanted:
                return
            self.stores += 1
            sql = ("SELECT " + " || char(0) || ".join(f"coalesce({c}, '')" for c in wanted)
                   + " FROM spans")
            for (text,) in conn.execute(sql):
                self.rows += 1
                if isinstance(text, str):
                    self.scan_text(f"store {path}: row", text)
        except sqlite3.Error:
            self.scan_errors += 1  # a deliberately corrupt store of a test
        finally:
            conn.close()

    def scan_tree(self, root: str) -> None:
        """Every SQLite file under ``root``."""
        for directory, _dirs, files in os.walk(root):
            for name in files:
                if name.endswith(("-wal", "-shm", "-journal")):
                    continue
                path = os.path.join(directory, name)
                try:
                    with open(path, "rb") as f:
                        head = f.read(16)
                except OSError:
                    continue
                if head == _SQLITE_MAGIC:
                    self.scan_store(path)

    def figures(self) -> dict[str, int]:
        return {"span_exports_scanned": self.spans, "stores_scanned": self.stores,
                "store_rows_scanned": self.rows, "otlp_payloads_scanned": self.payloads,
                "secrets_registered": len(self.secrets),
                "secrets_found": len(self.findings)}


SCANNER = Scanner(SECRETS)
_watched: set[str] = set()
_state: dict[str, Any] = {}


def watch(path: str) -> None:
    """Scan the store at ``path`` (or every store under a directory) at session end."""
    _watched.add(os.path.abspath(path))


def scan_payload(body: bytes) -> None:
    """Called by tests/otlp_receiver.py for each request body it accepts."""
    if _state.get("installed"):
        SCANNER.scan_payload(body)


def session_root() -> str | None:
    return _state.get("root")


def _wrap_export(cls: type, where: str) -> None:
    original = cls.__dict__.get("export")
    if original is None or getattr(original, "_leakscan", False):
        return

    def export(self: Any, spans: Sequence[Any], *args: Any, **kwargs: Any) -> Any:
        try:
            SCANNER.scan_spans(spans, where)
        except Exception:  # the scan must not change what the test sees
            SCANNER.scan_errors += 1
        return original(self, spans, *args, **kwargs)

    export._leakscan = True  # type: ignore[attr-defined]
    export.__wrapped__ = original  # type: ignore[attr-defined]
    cls.export = export  # type: ignore[attr-defined]


def _wrap_init_path(cls: type, attr: str = "path") -> None:
    original = cls.__dict__["__init__"]
    if getattr(original, "_leakscan", False):
        return

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        path = getattr(self, attr, None)
        if isinstance(path, str):
            _watched.add(path)
            if cls.__name__ == "StoreReader":  # written by someone else: scan now,
                try:  # its directory may be gone at the end
                    SCANNER.scan_store(path)
                except Exception:  # never change what the reader under test does
                    SCANNER.scan_errors += 1

    __init__._leakscan = True  # type: ignore[attr-defined]
    cls.__init__ = __init__  # type: ignore[misc]


def install() -> None:
    """Wrap the exporters and point the temporary directory at the session's own."""
    if _state.get("installed") or os.environ.get("OS_TRACE_LEAKSCAN", "1") == "0":
        return
    import wrapt
    from opentelemetry.sdk.trace import export as sdk_export
    from opentelemetry.sdk.trace.export import in_memory_span_exporter

    from os_trace_plugins.store import _exporter as store_exporter
    from os_trace_plugins.store import _reader as store_reader

    # where a directory must stay reachable by another user (the private
    # RabbitMQ node runs as ``rabbitmq``; this run's root is 0700)
    os.environ.setdefault(SYSTEM_TMPDIR_ENV, tempfile.gettempdir())
    root = tempfile.mkdtemp(prefix="os-trace-run-")
    os.environ["TMPDIR"] = root
    tempfile.tempdir = root
    _state.update(installed=True, root=root)
    _wrap_export(in_memory_span_exporter.InMemorySpanExporter, "InMemorySpanExporter")
    _wrap_export(sdk_export.ConsoleSpanExporter, "ConsoleSpanExporter")
    _wrap_export(store_exporter.SQLiteSpanExporter, "SQLiteSpanExporter")
    _wrap_init_path(store_exporter.SQLiteSpanExporter)
    _wrap_init_path(store_reader.StoreReader)
    for module, where in (
            ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLP/HTTP exporter"),
            ("opentelemetry.exporter.otlp.proto.grpc.trace_exporter", "OTLP/gRPC exporter")):
        wrapt.register_post_import_hook(
            lambda m, where=where: _wrap_export(m.OTLPSpanExporter, where), module)


def finish() -> bool:
    """Scan the stores; True when the run leaked nothing.  Removes a clean root."""
    if not _state.get("installed"):
        return True
    root = _state.get("root")
    if root:
        SCANNER.scan_tree(root)
    for path in sorted(_watched):
        if root and path.startswith(root + os.sep):
            continue  # scanned with the tree (or gone with its test's directory)
        if os.path.isdir(path):
            SCANNER.scan_tree(path)
        elif os.path.exists(path):
            SCANNER.scan_store(path)
    clean = not SCANNER.findings
    if clean and root and os.environ.get("OS_TRACE_KEEP_TMP") != "1":
        shutil.rmtree(root, ignore_errors=True)
    return clean
