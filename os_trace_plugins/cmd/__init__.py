"""The ``os-trace`` console script; each subcommand lives in its own module."""

__all__: list[str] = []
