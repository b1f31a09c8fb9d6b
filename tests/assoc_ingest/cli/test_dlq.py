"""``assoc-ingest dlq``: an operator inspects dead letters and replays them to the work queue,
on the real RabbitMQ broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner, Result

from assoc_ingest.cli import app
from workers.queue.base import Topology
from workers.queue.rabbit import RabbitJobQueue

BODY = b'{"v": 1, "kind": "association", "items": [not json'


def cli(env: dict[str, str | None], *args: str) -> Result:
    return CliRunner(env=env).invoke(app, list(args))


async def _bury(url: str, topology: Topology, count: int) -> None:
    queue = RabbitJobQueue(url, topology)
    await queue.start()
    try:
        for n in range(count):
            await queue.publish_dead(
                BODY, message_id=f"m-{n}", headers={"x-origin": "test"}, reason="undecodable"
            )
    finally:
        await queue.close()


async def _state(url: str, topology: Topology) -> tuple[int, int]:
    """(messages in the work queue, dead letters)."""
    queue = RabbitJobQueue(url, topology)
    await queue.start()
    try:
        return await queue.depth(), len(await queue.dead_letters(100))
    finally:
        await queue.close()


async def _delete(url: str, topology: Topology) -> None:
    queue = RabbitJobQueue(url, topology)
    await queue.start()
    try:
        await queue.delete_topology()
    finally:
        await queue.close()


@pytest.fixture
def broker(amqp_url: str, unique_name: str) -> Iterator[tuple[Topology, dict[str, str | None]]]:
    """A topology of its own holding two dead letters, and the env that points the CLI at it."""
    topology = Topology(base=unique_name)
    asyncio.run(_bury(amqp_url, topology, 2))
    env: dict[str, str | None] = {"AMQP_URL": amqp_url, "INGEST_TOPOLOGY_NAME": unique_name}
    try:
        yield topology, env
    finally:
        asyncio.run(_delete(amqp_url, topology))


@pytest.mark.rabbitmq
def test_list_shows_dead_letters_with_their_reason_and_keeps_them(
    amqp_url: str, broker: tuple[Topology, dict[str, str | None]]
) -> None:
    topology, env = broker
    result = cli(env, "dlq", "list", "--json")
    assert result.exit_code == 0, result.output
    letters = json.loads(result.stdout)
    assert [letter["messageID"] for letter in letters] == ["m-0", "m-1"]
    assert {letter["reason"] for letter in letters} == {"undecodable"}
    assert letters[0]["body"] == BODY.decode()
    assert letters[0]["headers"]["x-origin"] == "test"
    assert asyncio.run(_state(amqp_url, topology)) == (0, 2)


@pytest.mark.rabbitmq
def test_list_honours_the_limit(broker: tuple[Topology, dict[str, str | None]]) -> None:
    _, env = broker
    result = cli(env, "dlq", "list", "--limit", "1", "--json")
    assert result.exit_code == 0, result.output
    assert [letter["messageID"] for letter in json.loads(result.stdout)] == ["m-0"]
    table = cli(env, "dlq", "list")
    assert "m-1" in table.stdout and "undecodable" in table.stdout


@pytest.mark.rabbitmq
def test_replay_moves_dead_letters_back_to_the_work_queue(
    amqp_url: str, broker: tuple[Topology, dict[str, str | None]]
) -> None:
    topology, env = broker
    first = cli(env, "dlq", "replay", "--limit", "1", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {"replayed": 1}
    assert asyncio.run(_state(amqp_url, topology)) == (1, 1)
    rest = cli(env, "dlq", "replay")
    assert rest.exit_code == 0, rest.output
    assert "replayed 1 dead letter" in rest.stdout
    assert asyncio.run(_state(amqp_url, topology)) == (2, 0)


def test_dlq_without_amqp_url_fails_with_a_clear_error() -> None:
    result = cli({"AMQP_URL": None, "INGEST_AMQP_URL": None}, "dlq", "list")
    assert result.exit_code == 1
    assert "AMQP_URL is not set" in result.stderr
