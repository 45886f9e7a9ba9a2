"""The job runner of a hub process: runs submitted jobs in the background and, every few
seconds, claims jobs nobody runs (queued ones, and those of a process that died), so a
restarted hub resumes them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub import metrics
from hub.jobs import generate
from protocols.codes import Keyring

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class JobRunner:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        keyring: Keyring,
        *,
        stale_s: float = 60.0,
        poll_s: float = 5.0,
        chunk: int = generate.CHUNK,
        concurrency: int = 2,
    ) -> None:
        self.sessions = sessions
        self.keyring = keyring
        self.owner = generate.process_id()
        self.stale_s = stale_s
        self.poll_s = poll_s
        self.chunk = chunk
        self._slots = asyncio.Semaphore(concurrency)
        self._running: dict[int, asyncio.Task[str]] = {}
        self._poller: asyncio.Task[None] | None = None
        # Requests this process is serving (the middleware counts them): while there are
        # some, jobs leave gaps between their transactions (see generate.run_job).
        self.requests_in_flight = 0

    async def start(self) -> None:
        self._poller = asyncio.create_task(self._poll(), name="job-poller")

    async def stop(self) -> None:
        tasks = [t for t in (self._poller, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # Jobs cut short stay 'running' with our owner; a later process takes them over
        # once their heartbeat is stale, at the chunk where they stopped.

    def submit(self, batch_id: int) -> asyncio.Task[str]:
        """Run a job (or join its run when it already runs here)."""
        task = self._running.get(batch_id)
        if task is None:
            task = asyncio.create_task(self._run(batch_id), name=f"job-{batch_id}")
            self._running[batch_id] = task
            task.add_done_callback(lambda _t: self._running.pop(batch_id, None))
        return task

    async def _run(self, batch_id: int) -> str:
        async with self._slots:
            if not await generate.claim(self.sessions, batch_id, self.owner, self.stale_s):
                return "not claimed"
            try:
                status = await generate.run_job(
                    self.sessions,
                    self.keyring,
                    batch_id,
                    self.owner,
                    chunk=self.chunk,
                    target_s=generate.TARGET_S,
                    progress=lambda done, total: metrics.job_progress(
                        batch_id, "generate", done, total
                    ),
                    contended=lambda: self.requests_in_flight > 0,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("Code generation job %s failed", batch_id)
                await generate.fail(
                    self.sessions, batch_id, self.owner, f"{type(exc).__name__}: {exc}"
                )
                metrics.JOBS_FINISHED.labels(kind="generate", outcome="failed").inc()
                return "failed"
            log.info("Code generation job %s: %s", batch_id, status)
            if status in generate.FINAL:
                metrics.JOBS_FINISHED.labels(kind="generate", outcome=status).inc()
            return status

    async def _poll(self) -> None:
        while True:
            try:
                for batch_id in await generate.orphans(
                    self.sessions, self.stale_s, set(self._running)
                ):
                    log.info("Resuming code generation job %s", batch_id)
                    self.submit(batch_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Looking for code generation jobs failed; trying again")
            await asyncio.sleep(self.poll_s)


def request_counter(get_runner: Callable[[web.Request], JobRunner | None]) -> Any:
    """A middleware counting the requests in flight for the process's job runner."""

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        runner = get_runner(request)
        if runner is None:
            return await handler(request)
        runner.requests_in_flight += 1
        try:
            return await handler(request)
        finally:
            runner.requests_in_flight -= 1

    return count
