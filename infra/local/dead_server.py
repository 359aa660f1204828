"""A dead mail server: a TCP server on loopback that accepts every connection and never answers."""

import contextlib
import socket
import threading
from types import TracebackType


class DeadServer:
    """Accepts connections on `port` and holds them, silent, until `stop()`: what a hung mail server looks
    like to a client, which waits for a greeting that never comes."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.port = int(self._socket.getsockname()[1])
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="dead-server", daemon=True)

    def start(self) -> "DeadServer":
        self._thread.start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:  # closed by stop()
                return
            self._held.append(connection)

    def stop(self) -> None:
        # shutdown() wakes the thread blocked in accept(); close() alone may not on Linux.
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        self._thread.join(timeout=5)
        for connection in self._held:
            connection.close()

    def __enter__(self) -> "DeadServer":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
