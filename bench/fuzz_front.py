"""The front under fuzzing: ``assoc-ingest dev`` in a subprocess, its keys and its log."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import jwt
import requests

from bench.common import CLI, ROOT, amqp_url, create_key, free_port

__all__ = ["JWT_SECRET", "Front", "Headers", "crashes_logged", "served_front", "token"]

Headers = dict[str, str]
JWT_SECRET = uuid.uuid4().hex + uuid.uuid4().hex
"""The HS256 secret the front under fuzzing verifies Bearer tokens with."""


@dataclass(frozen=True)
class Front:
    """Where the front listens, where it logs, and the headers of its two API keys."""

    base_url: str
    log: Path
    admin: Headers
    user_only: Headers


def token(roles: list[str], *, expires_in: float = 3600, secret: str = JWT_SECRET) -> str:
    """An HS256 JWT of ``fuzz-jwt`` with ``roles``, signed with ``secret``."""
    claims = {"sub": "fuzz-jwt", "roles": roles, "exp": int(time.time() + expires_in)}
    return jwt.encode(claims, secret, algorithm="HS256")


def crashes_logged(log: Path) -> list[str]:
    """Log lines of errors the front or its workers logged (crashed requests, failed tasks)."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            if "Traceback" in line:
                found.append(line)
            continue
        if isinstance(record, dict) and record.get("level") in ("error", "critical"):
            found.append(line[:2000])
    return found


@contextmanager
def served_front(data_dir: Path, broker: str | None) -> Iterator[Front]:
    """``assoc-ingest dev`` on a free port, its output in ``data_dir/front.log``."""
    port = free_port()
    env = {
        "INGEST_HOST": "127.0.0.1",
        "INGEST_PORT": str(port),
        "INGEST_DATA_DIR": str(data_dir),
        "INGEST_METRICS_PORT": "0",
        "INGEST_JWT_SECRET": JWT_SECRET,
        "INGEST_ENTITY_WAIT": "1",
    }
    full_env = {k: v for k, v in os.environ.items() if k not in ("AMQP_URL", "MONGODB_URL")}
    full_env.update(env)
    if broker is not None:
        full_env.update({"AMQP_URL": amqp_url(), "INGEST_TOPOLOGY_NAME": broker})
    key, secret = create_key(full_env)
    user_only = subprocess.run(
        [*CLI, "keys", "create", "--user", "fuzz-user", "--role", "user", "--json"],
        env=full_env, check=True, capture_output=True, cwd=ROOT,
    ).stdout  # fmt: skip
    user_key = json.loads(user_only)
    log = data_dir / "front.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*CLI, "dev"], env=full_env, stdout=out, stderr=out, cwd=ROOT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base_url, proc, log)
        yield Front(
            base_url=base_url,
            log=log,
            admin={"api-key": key, "api-secret": secret},
            user_only={"api-key": user_key["apiKey"], "api-secret": user_key["apiSecret"]},
        )
    finally:
        proc.terminate()
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_healthy(base_url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the front exited: {log.read_text()[-3000:]}")
        try:
            if requests.get(base_url + "/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the front did not start: {log.read_text()[-3000:]}")
