"""Logs: every line a process writes is one JSON event, libraries' records included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import logging
from workers.ground.logs import configure_logging, get_logger

configure_logging("INFO", "json")
try:
    raise ConnectionResetError(104, "Connection reset by peer")
except ConnectionResetError:
    logging.getLogger("aiormq.connection").exception("Cancelling cause reader exited abnormally")
logging.getLogger("aio_pika.robust_connection").warning("Reconnecting after %s seconds.", 1)
logging.getLogger("aio_pika").debug("not shown at INFO")
get_logger("workers").info("job.stored", items=3)
"""


def test_library_records_and_tracebacks_are_json_lines_with_their_logger_and_level() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, check=True
    )

    events = [json.loads(line) for line in done.stderr.splitlines()]

    assert [(e["event"], e["level"]) for e in events] == [
        ("Cancelling cause reader exited abnormally", "error"),
        ("Reconnecting after 1 seconds.", "warning"),
        ("job.stored", "info"),
    ]
    assert events[0]["logger"] == "aiormq.connection"
    assert "ConnectionResetError" in events[0]["exception"]


ON_A_LOOP = """
import asyncio, logging
from workers.ground.logs import configure_logging, get_logger

configure_logging("INFO", "json")
log = get_logger("workers")

async def main():
    log.info("first")
    log.warning("second")
    logging.getLogger("aiohttp.server").warning("third")
    await asyncio.sleep(0)
    log.info("fourth")
    log.info("fifth")

asyncio.run(main())
log.info("sixth")
"""


def test_lines_logged_on_an_event_loop_keep_their_order_and_none_is_lost() -> None:
    done = subprocess.run(
        [sys.executable, "-c", ON_A_LOOP], cwd=ROOT, capture_output=True, text=True, check=True
    )

    events = [json.loads(line)["event"] for line in done.stderr.splitlines()]

    assert events == ["first", "second", "third", "fourth", "fifth", "sixth"]
