"""A batch's results as dicts in Python, streamed through the one results pipeline.

``cbatch results -o -`` streams JSONL to stdout as the parts are decoded; a
program wants the same records without a file or a terminal. So the download
runs as it does for ``-o -`` (the same task, merge across retry attempts, link
renewal and counts included), in a thread whose "stdout" is the write end of
a pipe, and the caller's iterator reads the other end a line at a time. The
pipe's buffer is the only thing between them: a slow consumer slows the
download, memory stays flat however many records there are.

A consumer that stops early closes its end; the writer then meets a broken
pipe, stops, and cleans up its part files before the iterator returns.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import IO, Any

BinaryStdout = Callable[[], AbstractContextManager[IO[bytes]]]
Download = Callable[[BinaryStdout], object]
"""Writes the results as JSONL to the stream the callable it is given opens."""


def stream_records(download: Download) -> Iterator[dict[str, Any]]:
    """Each record ``download`` writes, as a dict, while it is still downloading the rest.

    An error of the download (the batch still running, results expired, a part
    that cannot be fetched) is raised here, after the records that came before
    it; stopping the iteration early stops the download.
    """
    import orjson  # a dependency: no fallback

    loads = orjson.loads
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "rb")
    failure: list[BaseException] = []
    opened = threading.Event()

    @contextmanager
    def pipe() -> Iterator[IO[bytes]]:
        opened.set()
        with os.fdopen(write_fd, "wb") as stream:
            yield stream

    def work() -> None:
        from ..state.store import close_thread

        try:
            download(pipe)
        except BaseException as exc:  # handed to the reading thread, which raises it
            failure.append(exc)
        finally:
            if not opened.is_set():  # stopped before writing: the reader must still see the end
                os.close(write_fd)
            close_thread()  # the lineage it read, if any: this thread's connection

    thread = threading.Thread(target=work, name="cbatch-records", daemon=True)
    thread.start()
    try:
        for line in reader:
            if line.strip():
                yield loads(line)
    finally:
        reader.close()
        thread.join()
    if failure:
        raise failure[0]
