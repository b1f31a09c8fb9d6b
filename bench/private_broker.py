"""A RabbitMQ node of one's own: its own name, ports and data directory.

The machine's default node serves every other process on the machine, so whatever stops, kills
or fills a broker (chaos, broker-restart tests) runs against a node started here instead:

    with PrivateRabbitNode() as node:
        node.amqp_url, node.name   # amqp://guest:guest@127.0.0.1:<port>/, chaos-<id>@localhost
        node.kill()                # SIGKILL the node's Erlang VM (as a crash would)
        node.start()               # the same node again, with its data

The data directory is removed on exit; the node is shut down, or killed when it does not stop.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

from bench.common import free_port

__all__ = ["PrivateRabbitNode"]

_SERVER = "rabbitmq-server"
_CTL = "rabbitmqctl"


class PrivateRabbitNode:
    """One RabbitMQ node on loopback, started by ``start`` and removed by ``close``."""

    def __init__(self, *, prefix: str = "chaos", start_timeout: float = 60.0) -> None:
        if shutil.which(_SERVER) is None or shutil.which(_CTL) is None:
            raise RuntimeError("rabbitmq-server and rabbitmqctl are needed on PATH")
        self.name = f"{prefix}-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.amqp_url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self._start_timeout = start_timeout
        self._dir = Path(tempfile.mkdtemp(prefix="rabbit-node-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._prepare_directory()

    def _prepare_directory(self) -> None:
        for sub in ("mnesia", "log"):
            (self._dir / sub).mkdir()
        (self._dir / "enabled_plugins").write_text("[].\n")
        (self._dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        if os.geteuid() == 0:
            # rabbitmq-server drops to the rabbitmq user when started as root.
            subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(self._dir)], check=True)
            self._dir.chmod(0o755)

    def _environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self._dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self._dir / "log"),
            "RABBITMQ_PID_FILE": str(self._dir / "node.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self._dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self._dir / "rabbitmq"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(self._dir / "feature_flags"),
        }

    def ctl(self, *args: str, timeout: float = 120.0) -> str:
        """``rabbitmqctl -n <this node> args``: its output, or ``RuntimeError``."""
        command = [_CTL, "-n", self.name, *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def start(self) -> None:
        """Start the node (again, after ``kill`` or ``shutdown``) and wait until it serves."""
        log = (self._dir / "server.out").open("ab")
        self._process = subprocess.Popen(
            [_SERVER],
            env=self._environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + self._start_timeout
        while True:
            try:
                self.ctl("await_startup", timeout=30)
                return
            except (RuntimeError, subprocess.TimeoutExpired):
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"RabbitMQ node {self.name} did not start: {self._tail()}"
                    ) from None
                time.sleep(0.5)

    def _tail(self) -> str:
        try:
            return (self._dir / "server.out").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no output)"

    def beam_pid(self) -> int:
        """The PID of the node's Erlang VM."""
        return int((self._dir / "node.pid").read_text().strip())

    def kill(self) -> None:
        """SIGKILL the node's Erlang VM, as a crash would, and wait until it is gone."""
        os.kill(self.beam_pid(), signal.SIGKILL)
        if self._process is not None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=30)

    def shutdown(self) -> None:
        """Stop the node cleanly."""
        self.ctl("shutdown", timeout=60)
        if self._process is not None:
            self._process.wait(timeout=30)

    def close(self) -> None:
        """Stop the node (kill it when it does not stop) and remove its data directory."""
        if self._process is not None and self._process.poll() is None:
            try:
                self.shutdown()
            except (RuntimeError, subprocess.TimeoutExpired):
                try:
                    self.kill()
                except (OSError, ValueError, subprocess.TimeoutExpired):
                    os.killpg(self._process.pid, signal.SIGKILL)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> PrivateRabbitNode:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
