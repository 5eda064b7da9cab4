"""Reliability and security under faults, load and hostile input (docs/reliability.md).

Run by the README's test command in the newest-releases layer only (the whole
``tests`` tree); each test reports its figures through :mod:`tests.figures`.
Tests that take more than a few seconds carry the ``slow`` marker.
"""
