"""Sending messages in the format of `samples/messages.jsonl` to Kafka (`bo publish FILE`).

Each line is `{"topic", "key", "value", "headers"}`; the value is sent as its UTF-8 bytes
exactly as written. Topics named as in SPEC section 2 are sent to the configured names.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException, Producer

from bo.progress import Progress

DEFAULT_TOPICS = ("bo.ledger-entries.v1", "bo.payment-orders.v1")


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, str | bytes | None]]


def topic_map(topics: tuple[str, str]) -> dict[str, str]:
    """The SPEC's default topic names (as in the samples) mapped to the configured (ledger, orders) topics."""
    return dict(zip(DEFAULT_TOPICS, topics, strict=True))


class BadLineError(ValueError):
    def __init__(self, path: Path, line: int, problem: str) -> None:
        super().__init__(f"{path}:{line}: {problem}")


def read_messages(path: Path, topic_map: Mapping[str, str]) -> Iterator[OutgoingMessage]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                yield parse_line(line, topic_map, path, number)


def parse_line(line: str, topic_map: Mapping[str, str], path: Path, number: int) -> OutgoingMessage:
    try:
        item: dict[str, Any] = json.loads(line)
        topic = str(item["topic"])
        value = item.get("value")
        key = item.get("key")
        headers = item.get("headers") or {}
    except (ValueError, KeyError, TypeError) as exc:
        raise BadLineError(path, number, f"not a message line ({exc})") from exc
    return OutgoingMessage(
        topic=topic_map.get(topic, topic),
        key=key.encode("utf-8") if isinstance(key, str) else None,
        value=value.encode("utf-8") if isinstance(value, str) else None,
        headers=[(str(k), str(v).encode("utf-8")) for k, v in dict(headers).items()],
    )


def producer(bootstrap_servers: str, client_settings: Mapping[str, Any] | None = None) -> Producer:
    """`client_settings`: the deployment's librdkafka settings (Event Hubs: bo/entra.py)."""
    return Producer({
        "bootstrap.servers": bootstrap_servers,
        "linger.ms": 5,
        "enable.idempotence": True,
        "log_level": 3,
        **(client_settings or {}),
    })


def publish(bootstrap_servers: str, messages: Iterable[OutgoingMessage], *,
            total: int | None = None, label: str = "publish", client_settings: Mapping[str, Any] | None = None) -> int:
    """Send every message, keyed so that one entity stays on one partition; flush at the end."""
    out = producer(bootstrap_servers, client_settings)
    failures: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    sent = 0
    with Progress(label, total) as progress:
        for message in messages:
            while True:
                try:
                    out.produce(message.topic, key=message.key, value=message.value,
                                headers=message.headers, on_delivery=delivered)
                    break
                except BufferError:
                    out.poll(0.05)
            sent += 1
            progress.advance()
            if sent % 1000 == 0:
                out.poll(0)
        remaining = out.flush(30)
    if remaining or failures:
        raise KafkaException(f"{remaining} messages undelivered, {len(failures)} failed: "
                             f"{failures[:3]}")
    return sent
