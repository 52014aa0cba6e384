# syntax=docker/dockerfile:1
# One image for every bo command: the command picks the role (serve, ingest, project, migrate,
# rebuild, dlq, backfill, …). Built once per commit and promoted by digest (.github/workflows/cd.yml).
#
#   docker build -t bo .
#   docker run --rm bo --help
#
# The base is pinned by digest: a rebuild gets the same bytes. Bump it deliberately (the
# digest of `python:3.11-slim-bookworm` when updating, in both FROM lines), in one commit that CI checks.

# --- build: bo and every dependency as wheels (compilers, if any wheel needs one, stay here) ---
FROM python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bo ./bo
COPY eventstore ./eventstore
COPY projections ./projections
COPY replay ./replay
COPY api ./api
COPY telemetry ./telemetry
COPY migrations ./migrations
RUN python -m pip wheel --wheel-dir /wheels .

# --- runtime: the wheels installed, no build tools, a non-root user, nothing writable but /tmp ---
FROM python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b AS runtime
LABEL org.opencontainers.image.title="bo" \
      org.opencontainers.image.description="Event-sourced back office for payments: Kafka -> event log -> projections -> admin API"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # Local state (the development issuer's key, the cursor key outside prod): the only writes.
    BO_HOME=/tmp/bo \
    # Metrics and health ports answer on the container's interfaces, for the scraper and the probe.
    BO_LISTEN_HOST=0.0.0.0 \
    # What HEALTHCHECK asks; each service sets its own (compose, Container Apps probes).
    BO_PROBE_URL=http://127.0.0.1:8000/healthz \
    # The wheels' own OpenSSL (psycopg's libpq with sslrootcert=system) trusts the system's CAs.
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels /wheels/*.whl \
 && groupadd --system --gid 10001 bo \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin bo
WORKDIR /app
# The sample messages, for `bo publish samples/messages.jsonl` against a development stack.
COPY --chown=root:root samples ./samples
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 CMD ["python", "-m", "bo.probe"]
ENTRYPOINT ["bo"]
CMD ["serve", "--bind", "0.0.0.0:8000", "--workers", "2"]
