"""What the benchmarks that measure instrumentation's cost (bench/api.py, bench/ingest.py) put
around the process they measure:

- `otlp_sink`: an OTLP/HTTP receiver that accepts trace exports and discards them, so the
  exporter does all its work (batching, encoding, posting), as it would towards a collector;
- `scraping`: a scrape of a /metrics endpoint every SCRAPE_EVERY_S, as Prometheus would.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Sink:
    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0
        self.lock = threading.Lock()


@contextmanager
def otlp_sink() -> Iterator[tuple[str, Sink]]:
    """An endpoint for OTEL_EXPORTER_OTLP_ENDPOINT, and what it received."""
    sink = Sink()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            self.rfile.read(length)
            with sink.lock:
                sink.requests += 1
                sink.bytes += length
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", sink
    finally:
        server.shutdown()
        server.server_close()


SCRAPE_EVERY_S = 1.0  # Prometheus usually scrapes every 15 s; once a second is harsher


class Scrapes:
    count = 0


@contextmanager
def scraping(url: str) -> Iterator[Scrapes]:
    """Scrape `url` every SCRAPE_EVERY_S in a thread until the block ends (failures not counted)."""
    scrapes, stop = Scrapes(), threading.Event()

    def loop() -> None:
        while not stop.wait(SCRAPE_EVERY_S):
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    resp.read()
                scrapes.count += 1
            except OSError:
                pass

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield scrapes
    finally:
        stop.set()
        thread.join(10)
