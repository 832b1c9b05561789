# Nachtregister: multi-stage build; the steps are the README's steps.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY nightreg ./nightreg
COPY kiosk ./kiosk
COPY admin ./admin
COPY migrations ./migrations
RUN python -m venv /opt/nightreg \
    && /opt/nightreg/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/nightreg/bin/pip install --no-cache-dir .

FROM python:3.11-slim-bookworm
# DejaVu: the QR posters print é, ü and ß instead of empty boxes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 nightreg \
    && useradd --system --uid 10001 --gid nightreg --home-dir /data --shell /usr/sbin/nologin nightreg \
    && mkdir /data && chown nightreg:nightreg /data
COPY --from=build /opt/nightreg /opt/nightreg
ENV PATH="/opt/nightreg/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    NIGHTREG_DATA_DIR=/data \
    MPLCONFIGDIR=/tmp/matplotlib
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"]
CMD ["nightreg", "serve", "--host", "0.0.0.0", "--port", "8000"]
