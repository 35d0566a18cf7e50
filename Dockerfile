# iwant: one bot process per container (IWANT_BACKEND chooses the platform); see docs/deploy.md.
# Build: docker build -t iwant .   Run: compose.yaml, or docker run with an --env-file.

# -- build: the iwant wheel and every dependency's, from this checkout ----------------------------
FROM python:3.11-slim AS build
WORKDIR /src
COPY . /src
RUN pip wheel --no-cache-dir --wheel-dir /wheels /src

# -- run: the wheels installed, nothing else of the checkout ---------------------------------------
FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin iwant \
    && mkdir -p /data && chown iwant:iwant /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels iwant && rm -rf /wheels

USER iwant
WORKDIR /data
# Data (a SQLite file when IWANT_DATABASE_URL is unset, a Matrix session) lives in the volume.
ENV IWANT_DATA_DIR=/data \
    IWANT_HTTP_HOST=0.0.0.0 \
    IWANT_HTTP_PORT=9100 \
    IWANT_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
EXPOSE 9100
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('IWANT_HTTP_PORT', '9100'), timeout=8)"]
# docker stop sends SIGTERM and waits 10 s: the bot finishes its send, hands back the rest.
STOPSIGNAL SIGTERM
CMD ["iwant", "run"]
