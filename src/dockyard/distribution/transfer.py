"""What pushes and pulls share: chunk size, retry policy, and the retry loop with its progress line."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

import aiohttp

from dockyard.distribution.progress import Progress

T = TypeVar("T")
RunBlocking = Callable[..., Awaitable[Any]]
ATTEMPTS = 5  # tries per layer, as dockerd
CHUNK = 1 << 20  # bytes moved between the network and a file at a time
RETRYABLE = (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, asyncio.TimeoutError, ConnectionError)


async def retrying(op: Callable[[], Awaitable[T]], progress: Progress, layer_id: str, backoff: float) -> T:
    """``op()``, tried ATTEMPTS times on network errors, with "Retrying in N seconds" between
    (N = backoff x attempt, as dockerd); the last error is raised."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await op()
        except RETRYABLE:
            if attempt == ATTEMPTS:
                raise
            delay = backoff * attempt
            await progress.status(f"Retrying in {delay:g} second{'s' if delay != 1 else ''}", layer_id)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


async def all_or_none(jobs: Iterable[Coroutine[Any, Any, Any]]) -> None:
    """Run ``jobs`` concurrently; the first failure cancels the others (and is raised once they ended)."""
    tasks = [asyncio.create_task(job) for job in jobs]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
