# One image for every bo process; the command picks the role (ingest, project, serve, migrate).
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bo ./bo
COPY eventstore ./eventstore
COPY projections ./projections
COPY replay ./replay
COPY api ./api
COPY migrations ./migrations
COPY samples ./samples
COPY contracts ./contracts
RUN pip install -e . && useradd --system --uid 10001 bo
USER bo
ENTRYPOINT ["bo"]
CMD ["serve", "--bind", "0.0.0.0:8000", "--workers", "2"]
