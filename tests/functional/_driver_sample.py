"""A sample vendor driver used by the driver tests (and the stevedore entry point)."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any


class DriverError(Exception):
    pass


class BaseDriver(abc.ABC):
    @abc.abstractmethod
    def spawn(self, context: Any, instance: str, admin_password: str | None = None,
              connection_info: dict[str, Any] | None = None) -> dict[str, Any]:
        """Boot an instance."""


class SampleDriver(BaseDriver):
    """A driver with sync, generator, async, failing and private methods."""

    capabilities = {"has_imagecache": True}

    def __init__(self, host: str = "node1") -> None:
        self.host = host
        self.calls: list[str] = []

    def spawn(self, context: Any, instance: str, admin_password: str | None = None,
              connection_info: dict[str, Any] | None = None) -> dict[str, Any]:
        self.calls.append("spawn")
        return {"instance": instance, "auth_token": "tok-123"}

    def list_instances(self, count: int = 3) -> Iterator[str]:
        for i in range(count):
            yield f"vm-{i}"
        return "listed"

    async def attach_volume(self, volume_id: str) -> str:
        await asyncio.sleep(0)
        return f"attached {volume_id}"

    async def stream_events(self, count: int = 2) -> AsyncIterator[int]:
        for i in range(count):
            await asyncio.sleep(0)
            yield i

    def reboot(self, instance: str) -> None:
        raise DriverError(f"cannot reboot {instance}")

    def append_to(self, items: list[str]) -> None:
        items.append("driver was here")

    def chain(self) -> SampleDriver:
        return self

    def _cleanup(self) -> str:
        return "private"

    @staticmethod
    def version() -> str:
        return "1.0"

    @classmethod
    def default(cls) -> SampleDriver:
        return cls("default")

    @property
    def node(self) -> str:
        return self.host

    def __len__(self) -> int:
        return 7

    def __call__(self, x: int) -> int:
        return x * 2


class Widget:
    """Not a driver, but an ordinary object with __getattr__ that raises."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no attribute {name} on a widget")

    def ping(self) -> str:
        return "pong"
