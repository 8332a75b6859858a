# OpenDPIA: one image for every process (serve, worker, bridge, migrate).
# Build: docker build -t opendpia .   Run the whole deployment: docker compose up

# The browser editor, built with the pinned bundler from the lockfile (no CDN at run time).
FROM node:20-slim AS editor
WORKDIR /build/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# WeasyPrint (the PDF export) lays text out with Pango and HarfBuzz, in DejaVu Sans.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system opendpia && useradd --system --gid opendpia --home /app opendpia
WORKDIR /app
COPY pyproject.toml README.md ./
COPY server/ server/
COPY email_bridge/ email_bridge/
COPY migrations/ migrations/
COPY --from=editor /build/frontend/dist/ frontend/dist/
# Editable, so that the server finds the editor bundle beside it in /app/frontend/dist.
RUN pip install -e . && python -c "import server.cli, email_bridge"
USER opendpia
ENV OPENDPIA_HOST=0.0.0.0 \
    OPENDPIA_PORT=8000 \
    OPENDPIA_LOG_FORMAT=json
EXPOSE 8000
# SIGTERM: WebSockets are closed with 1012 (reconnect elsewhere) and every room is flushed.
STOPSIGNAL SIGTERM
CMD ["opendpia", "serve"]
