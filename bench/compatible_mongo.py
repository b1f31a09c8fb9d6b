"""A MongoDB-compatible server of one's own, for tests and benchmarks: SecantusDB.

SecantusDB (PyPI ``SecantusDB``, GPL-2.0) speaks the MongoDB wire protocol PyMongo uses, stores
on WiredTiger, runs multi-document transactions and presents itself as a one-member replica set
named ``secantus``. It is a test dependency only (the ``test`` extra): never a dependency of the
package, never in the image. It is not mongod: where they differ mongod's documented behaviour
is what the code follows, and a test that leans on a difference says so.

    with CompatibleMongo() as server:        # secantusd-py on a free loopback port
        server.url                           # mongodb://127.0.0.1:<port>/
    CompatibleMongo(standalone=True)         # without the replica-set advertisement

The server runs as its own process (``secantusd-py``), so its threads never compete with the
caller's event loop for the GIL; its data directory is removed on exit.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from bench.common import free_port

__all__ = ["LABEL", "CompatibleMongo"]

LABEL = "measured on SecantusDB, a MongoDB-compatible server; says nothing of mongod's speed"
"""How a figure measured on this server is labelled wherever it is printed."""

_DAEMON = "secantusd-py"


def _daemon() -> str:
    beside = Path(sys.executable).with_name(_DAEMON)
    found = str(beside) if beside.exists() else shutil.which(_DAEMON)
    if found is None:
        raise RuntimeError(f"{_DAEMON} is not installed (pip install -e '.[test]')")
    return found


class CompatibleMongo:
    """One SecantusDB server on loopback, started by ``start`` and removed by ``stop``."""

    def __init__(
        self,
        directory: Path | None = None,
        *,
        standalone: bool = False,
        start_timeout: float = 60.0,
        cache_size: str = "256M",
    ) -> None:
        self.standalone = standalone
        self._owns_directory = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="secantus-"))
        self._start_timeout = start_timeout
        self._cache_size = cache_size
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self) -> None:
        """Start the server and wait until it answers ``ping``; ``RuntimeError`` with the tail
        of its log when it does not within ``start_timeout`` seconds."""
        for attempt in range(3):  # a free port may be taken between choosing and binding it
            try:
                self._start_once()
                return
            except RuntimeError:
                self.stop(keep_directory=True)
                if attempt == 2:
                    raise

    def _start_once(self) -> None:
        self.port = free_port()
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        command = [
            _daemon(),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--storage-path", str(data),
            "--cache-size", self._cache_size,
            "--log-level", "WARNING",
            "--enable-test-commands",  # configureFailPoint, for tests that make the server fail
        ]  # fmt: skip
        if self.standalone:
            command.append("--standalone")
        log = (self.directory / "server.log").open("ab")
        try:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        finally:
            log.close()
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                client: MongoClient[dict[str, object]]
                with MongoClient(self.url, serverSelectionTimeoutMS=500) as client:
                    client.admin.command("ping")
                return
            except PyMongoError:
                time.sleep(0.1)
        tail = (self.directory / "server.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"SecantusDB did not start on port {self.port}: {tail}")

    def stop(self, *, keep_directory: bool = False) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 15 s) and remove its directory."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if not keep_directory and self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> CompatibleMongo:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
