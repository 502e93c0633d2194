"""`QuietServer`: uvicorn's server, waking once a second at rest instead of ten times.

uvicorn's main loop sleeps 0.1 s between checks of `should_exit`, and does its per-second work (the
`Date` header) every tenth check; two idle servers in `llmrel serve` cost about half a percent of a
core for that alone. This loop runs the same `on_tick` once a second, and `exit()` ends it at once.
"""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn

_TICKS_PER_SECOND = 10  # uvicorn counts ticks of 0.1 s; its per-second work runs when the count is a multiple


class QuietServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop, self._exit = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + _TICKS_PER_SECOND) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit.wait(), 1.0)

    def exit(self) -> None:
        """Stop serving (graceful, as `should_exit`), from any thread, without waiting for the next second."""
        self.should_exit = True
        if self._loop is not None and self._exit is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                self._loop.call_soon_threadsafe(self._exit.set)
