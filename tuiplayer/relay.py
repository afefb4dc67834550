"""A TCP relay standing in for an SSH tunnel, for the bench and the tests (issue 16).

`Relay(target_port)` listens on 127.0.0.1 and forwards each connection to the target port,
holding every piece back by half the round trip (plus up to `jitter` more, in order), as a
network link between the listener's machine and the sound server would. `cut()` drops the link
(every connection reset, nothing listening), `restore()` brings it back on the same port.
It runs an asyncio loop on a daemon thread of its own; `close()` ends it.

(socat relays but cannot delay; `tc netem` delays but needs root and a network namespace.)
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
import time

CHUNK = 1 << 16


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close a connection at once with a reset, leaving nothing behind on its port."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Relay:
    """127.0.0.1:`port` → 127.0.0.1:`target_port`, each way late by round_trip/2 + U(0, jitter) s."""

    def __init__(self, target_port: int, round_trip: float = 0.0, jitter: float = 0.0, seed: int = 0,
                 port: int | None = None) -> None:
        """port: where to listen (default: a free one, `free_port()`)."""
        self.target_port = target_port
        self.round_trip, self.jitter = round_trip, jitter
        self._random = random.Random(seed)
        self.port = port or free_port()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, name="relay", daemon=True)
        self._thread.start()
        self.restore()

    @property
    def address(self) -> str:
        """The relay as PULSE_SERVER names it."""
        return f"tcp:127.0.0.1:{self.port}"

    def _call(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)  # type: ignore[arg-type]

    def restore(self) -> None:
        """Listen (again) and relay new connections."""
        async def listen() -> None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
        self._call(listen())

    def cut(self) -> None:
        """Drop the link: stop listening and reset every connection, as a dead tunnel does."""
        async def cut() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None
            for writer in list(self._writers):
                with contextlib.suppress(OSError):
                    _reset(writer)
            self._writers.clear()
        self._call(cut())

    def close(self) -> None:
        """Cut the link, end what still relays (no coroutine is left to a closed loop), stop."""
        self.cut()

        async def finish() -> None:
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._call(finish())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _accept(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        try:
            server_in, server_out = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_out.transport.abort()
            return
        self._writers |= {client_out, server_out}
        pipes = {asyncio.ensure_future(self._pipe(client_in, server_out)),
                 asyncio.ensure_future(self._pipe(server_in, client_out))}
        _, pending = await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)  # (either end gone: both)
        for task in pending:
            task.cancel()
        for writer in (client_out, server_out):
            self._writers.discard(writer)
            writer.transport.abort()

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        """Forward one direction, each piece when it is due (never before the one read before it)."""
        pieces: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, data = await pieces.get()
                if not data:
                    break
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                sink.write(data)
                await sink.drain()

        sender = asyncio.ensure_future(send())
        last_due = 0.0
        try:
            while data := await source.read(CHUNK):
                last_due = max(last_due, time.monotonic() + self.round_trip / 2 + self._random.uniform(0, self.jitter))
                pieces.put_nowait((last_due, data))
            pieces.put_nowait((last_due, b""))
            await sender
        except OSError:
            pass
        finally:
            sender.cancel()


def main() -> None:
    """`python -m tuiplayer.relay TARGET_PORT PORT [ROUND_TRIP_S [JITTER_S]]`: relay until stdin
    ends; a line `cut` drops the link, `restore` brings it back."""
    import sys

    args = sys.argv[1:]
    relay = Relay(int(args[0]), *(float(a) for a in args[2:4]), port=int(args[1]))  # type: ignore[arg-type]
    print("relaying", flush=True)
    for line in sys.stdin:
        getattr(relay, line.strip(), lambda: None)()
        print(line.strip(), flush=True)
    relay.close()


if __name__ == "__main__":
    main()
