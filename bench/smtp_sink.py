"""An SMTP server in its own process that counts the messages and bytes it receives."""

import multiprocessing
import socket
import time
from dataclasses import dataclass

SPAWN = multiprocessing.get_context("spawn")


def _serve(port: int, received, octets, ready, stop) -> None:
    from aiosmtpd.controller import Controller

    class Counter:
        async def handle_DATA(self, server, session, envelope):
            with received.get_lock():
                received.value += 1
            with octets.get_lock():
                octets.value += len(envelope.content)
            return "250 Message accepted for delivery"

    controller = Controller(Counter(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        stop.wait()
    finally:
        controller.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SmtpSink:
    port: int
    process: multiprocessing.Process
    received: object
    octets: object
    stop_event: object

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def counts(self) -> tuple[int, int]:
        """Returns (messages, bytes) received so far."""
        return self.received.value, self.octets.value

    def wait_for(self, messages: int, *, timeout: float) -> None:
        """Returns once `messages` in all arrived; raises TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while self.received.value < messages:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the SMTP server received {self.received.value} of {messages}"
                )
            time.sleep(0.01)

    def stop(self) -> None:
        self.stop_event.set()
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


def start() -> SmtpSink:
    """Starts the SMTP server process on a free port of 127.0.0.1, ready to accept."""
    received = SPAWN.Value("q", 0)
    octets = SPAWN.Value("q", 0)
    ready, stop = SPAWN.Event(), SPAWN.Event()
    port = free_port()
    process = SPAWN.Process(
        target=_serve,
        args=(port, received, octets, ready, stop),
        name="bench-smtp",
        daemon=True,
    )
    process.start()
    if not ready.wait(30):
        process.terminate()
        raise RuntimeError("the SMTP server process did not start within 30 s")
    return SmtpSink(port, process, received, octets, stop)
