# The telecare image for deploy/docker-compose.yml and deploy/distributed/docker-compose.yml:
#   docker build -t telecare:latest .
FROM python:3.11-slim
WORKDIR /opt/telecare
COPY pyproject.toml README.md ./
COPY telecare telecare
COPY ingest ingest
COPY detect detect
COPY alerts alerts
COPY simulators simulators
COPY configs configs
RUN pip install --no-cache-dir . && useradd --system --home-dir /var/lib/telecare telecare \
    && mkdir -p /var/lib/telecare && chown telecare /var/lib/telecare
USER telecare
ENV TELECARE_DATA_DIR=/var/lib/telecare TELECARE_CACHE_DIR=/var/lib/telecare/cache
CMD ["telecare", "--help"]
