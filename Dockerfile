# Corridor: one image for every process (worker, gateway, feed pollers); the command picks the role.
#   docker build -t corridor .
#   docker run --rm -e CORRIDOR_KAFKA_URL=kafka://kafka:9092 -e CORRIDOR_REDIS_URL=redis://redis:6379/0 corridor worker
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY stream ./stream
COPY agents ./agents
RUN pip install . \
    && useradd --system --uid 10001 --create-home --home-dir /home/corridor corridor \
    && mkdir -p /var/lib/corridor \
    && chown corridor:corridor /var/lib/corridor

USER corridor
# The worker keeps its local files (Faust's data directory, logs) in the working directory.
WORKDIR /var/lib/corridor
ENV CORRIDOR_STATE_DIR=/var/lib/corridor \
    CORRIDOR_GATEWAY_HOST=0.0.0.0 \
    CORRIDOR_METRICS_PORT=9100 \
    CORRIDOR_LOG_FORMAT=json

EXPOSE 8765 9100
ENTRYPOINT ["corridor"]
CMD ["--help"]
