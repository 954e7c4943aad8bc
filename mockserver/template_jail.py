"""The template jail: a campaign's own templates render in a child process bounded in memory and
time, so that one template (`{{ 7 ** 10**8 }}`, `{{ "x" * 10**9 }}`, a loop of loops) cannot
freeze the server — in-process, such a single C operation would hold the interpreter's lock and
stop every request — nor exhaust its memory. The sandbox (templates.py) already refuses what
reaches the server's objects; the jail bounds what it costs.

One child per serving process, started on first use (spawned, never forked: forking a process
with threads can copy a held lock), killed and started again when a render overruns. Requests are
served one at a time (a lock): the default templates, which are ours, never come here.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import threading
from multiprocessing.connection import Connection
from typing import Any

from .templates import RenderError, compile_template, render_template

LIMIT_SECONDS = 5.0  # one message's part; past it the child is killed and the message fails
MEMORY_BYTES = 768 << 20  # the child's address space (its own interpreter takes ~40 MiB of it)
KEPT_TEMPLATES = 64


def _serve(connection: Connection) -> None:  # pragma: no cover - runs in the child
    """The child: bounded, it renders what it is sent until its pipe closes."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    compiled: dict[tuple[str, str], Any] = {}
    while True:
        try:
            kind, source, variables = connection.recv()
        except EOFError:
            return
        try:
            key = (kind, source)
            if key not in compiled:
                if len(compiled) >= KEPT_TEMPLATES:
                    compiled.clear()
                compiled[key] = compile_template(kind, source)
            answer: tuple[bool, str] = (True, render_template(kind, compiled[key], variables))
        except RenderError as error:
            answer = (False, str(error))
        except MemoryError:
            answer = (False, f"template: {kind}: ran out of memory ({MEMORY_BYTES >> 20} MiB)")
        connection.send(answer)


class TemplateJail:
    """Renders a campaign's template in the child; RenderError when it fails or overruns."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._child: multiprocessing.process.BaseProcess | None = None
        self._connection: Connection | None = None
        self._pid = os.getpid()

    def render(self, kind: str, source: str, variables: dict[str, Any]) -> str:
        with self._lock:
            connection = self._ready()
            connection.send((kind, source, variables))
            if not connection.poll(LIMIT_SECONDS):
                self._stop()
                raise RenderError(f"template: {kind}: took over {LIMIT_SECONDS:g} s to render")
            try:
                done, text = connection.recv()
            except (EOFError, OSError):  # the child died: out of memory beyond MemoryError
                self._stop()
                raise RenderError(
                    f"template: {kind}: ran out of memory ({MEMORY_BYTES >> 20} MiB)"
                ) from None
        if not done:
            raise RenderError(text)
        return str(text)

    def _ready(self) -> Connection:
        if self._pid != os.getpid():  # forked from the process that started it: not ours
            self._child, self._connection, self._pid = None, None, os.getpid()
        if self._child is None or not self._child.is_alive() or self._connection is None:
            self._stop()
            ours, theirs = multiprocessing.get_context("spawn").Pipe()
            child = multiprocessing.get_context("spawn").Process(
                target=_serve, args=(theirs,), name="pisano-mock-templates", daemon=True
            )
            child.start()
            theirs.close()
            self._child, self._connection = child, ours
        return self._connection

    def _stop(self) -> None:
        if self._connection is not None:
            self._connection.close()
        if self._child is not None and self._child.pid is not None:
            self._child.kill()
            self._child.join(5)
        self._child, self._connection = None, None


JAIL = TemplateJail()  # one per process
