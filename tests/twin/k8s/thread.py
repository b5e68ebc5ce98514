"""Run an Emulator on its own event loop thread, for synchronous tests."""

from __future__ import annotations

import asyncio
import concurrent.futures
import pathlib
import threading
from collections.abc import Coroutine
from typing import Any

from .emulator import Emulator


class EmulatorThread:
    """``EmulatorThread(state_dir, nodes=...).start()`` -> serving; ``.run(coro)`` runs a coroutine on the emulator's loop;
    ``.call(fn, *args)`` runs a plain function there; ``.stop()`` stops everything."""

    def __init__(self, state_dir: pathlib.Path | str, host: str = "127.0.0.1", port: int = 0, nodes: list[dict] | None = None):
        self._args = (state_dir, host, port, nodes)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.emulator: Emulator | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return self.emulator.url

    @property
    def kubeconfig_path(self) -> pathlib.Path:
        return self.emulator.kubeconfig_path

    def start(self, timeout: float = 10.0) -> EmulatorThread:
        self._thread = threading.Thread(target=self._main, name="k8s-twin", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("k8s emulator did not start")
        if self._error:
            raise self._error
        return self

    def _main(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        try:
            self.emulator = Emulator(*self._args)
            await self.emulator.start()
        except BaseException as e:  # surface start errors to the caller
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await self.emulator.stop()

    def run(self, coro: Coroutine, timeout: float | None = 60.0) -> Any:
        fut: concurrent.futures.Future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def call(self, fn, *args, **kwargs) -> Any:
        async def _c():
            return fn(*args, **kwargs)

        return self.run(_c())

    def stop(self, timeout: float = 15.0) -> None:
        if self.loop is None or self._thread is None:
            return
        if self._stop is not None and self.loop.is_running():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
