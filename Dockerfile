# The latam/platform image: one image for every process of the platform, the command chooses
# which (infra/images/entrypoint.sh): `code-location` (Dagster gRPC server, where runs execute),
# `webserver`, `daemon`, `api`, `exporter`, `ui-proxy`, and the one-shot `latam` commands
# (`migrate`, `api-key create ...`). Build it with `make images`, which builds the base first.
#
# BASE_IMAGE is the platform's own Debian bookworm base (infra/images/base.sh: debootstrap,
# Python 3.11, tini, nginx-light), named by date and recipe. The build needs no registry; it reads
# PyPI (with the host's CA bundle as the secret `ca-bundle` when the network needs it).
#
# Stages: deps (the locked runtime dependencies in a venv, bytecode compiled), project (the
# package's entry point and its code under /app, bytecode compiled), runtime (non-root). The
# layers are ordered so that a code change rebuilds only the last few megabytes.

ARG BASE_IMAGE=localhost/latam/base:bookworm

FROM ${BASE_IMAGE} AS deps
ARG UV_VERSION=0.13.9
ARG PIP_INDEX_URL=
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_PROGRESS=1
# uv, the installer `make install` uses, in a venv of its own that the runtime never sees
RUN --mount=type=secret,id=ca-bundle,target=/run/secrets/ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi; \
    python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --quiet --no-cache-dir --disable-pip-version-check \
        ${PIP_INDEX_URL:+--index-url "$PIP_INDEX_URL"} "uv==${UV_VERSION}"
# the runtime dependencies only (no test or lint tools): `make lock` writes this file from
# pyproject.toml with the versions of requirements.lock. The packages' own test suites (pandas,
# scipy, numpy: about 100 MB) are never imported and are left out.
COPY infra/images/requirements-runtime.lock /tmp/requirements-runtime.lock
RUN --mount=type=secret,id=ca-bundle,target=/run/secrets/ca-bundle \
    --mount=type=cache,target=/root/.cache/uv,sharing=locked \
    if [ -s /run/secrets/ca-bundle ]; then export SSL_CERT_FILE=/run/secrets/ca-bundle; fi; \
    /opt/uv/bin/uv venv --quiet --python /usr/bin/python3.11 /opt/latam/venv \
    && /opt/uv/bin/uv pip sync --quiet --python /opt/latam/venv/bin/python --compile-bytecode \
        ${PIP_INDEX_URL:+--index-url "$PIP_INDEX_URL"} /tmp/requirements-runtime.lock \
    && find /opt/latam/venv/lib/python3.11/site-packages -type d -name tests -prune \
        -exec rm -rf {} +

FROM deps AS project
WORKDIR /app
# The package is installed in editable mode pointing at /app: its code finds the files it ships
# beside it (infra/dagster/dagster.yaml, infra/proxy/nginx.conf.j2) through its own path. The
# install needs only pyproject.toml (the code comes later), and what it adds to the venv (the
# `latam` command, the import hook, the metadata) is gathered in /stage: the venv layer of the
# runtime stays the one of the dependencies.
COPY pyproject.toml ./
RUN --mount=type=secret,id=ca-bundle,target=/run/secrets/ca-bundle \
    --mount=type=cache,target=/root/.cache/uv,sharing=locked \
    if [ -s /run/secrets/ca-bundle ]; then export SSL_CERT_FILE=/run/secrets/ca-bundle; fi; \
    mkdir latam_dagster api_service \
    && touch README.md latam_dagster/__init__.py api_service/__init__.py \
    && /opt/uv/bin/uv pip install --quiet --python /opt/latam/venv/bin/python --no-deps \
        ${PIP_INDEX_URL:+--index-url "$PIP_INDEX_URL"} --editable . \
    && site=/opt/latam/venv/lib/python3.11/site-packages \
    && mkdir -p /stage/bin "/stage${site#/opt/latam/venv}" \
    && cp -a /opt/latam/venv/bin/latam /stage/bin/ \
    && cp -a "$site"/__editable__*latam_data_platform* "$site"/latam_data_platform-*.dist-info \
        "/stage${site#/opt/latam/venv}/" \
    && rm -rf latam_dagster api_service README.md ./*.egg-info build
COPY latam_dagster /app/latam_dagster
COPY api_service /app/api_service
COPY infra/dagster/dagster.yaml /app/infra/dagster/dagster.yaml
COPY infra/proxy/nginx.conf.j2 /app/infra/proxy/nginx.conf.j2
COPY infra/images/workspace.yaml /app/infra/images/workspace.yaml
# run workers start with `python -B` and never write bytecode: compile it here
RUN /opt/latam/venv/bin/python -m compileall -q /app/latam_dagster /app/api_service

FROM ${BASE_IMAGE} AS runtime
RUN groupadd --system --gid 10001 latam \
    && useradd --no-log-init --uid 10001 --gid latam --create-home --home-dir /home/latam \
        --shell /usr/sbin/nologin latam \
    && install -d -o latam -g latam -m 0750 /opt/dagster/home /opt/dagster/home/storage \
        /var/lib/latam /var/lib/latam/quality /var/lib/latam/ui
ENV LANG=C.UTF-8 \
    PATH=/opt/latam/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    VIRTUAL_ENV=/opt/latam/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DAGSTER_HOME=/opt/dagster/home \
    DAGSTER_DISABLE_TELEMETRY=1 \
    GX_ANALYTICS_ENABLED=false \
    LATAM_QUALITY_DIR=/var/lib/latam/quality \
    LATAM_UI_AUTH_DIR=/var/lib/latam/ui \
    DAGSTER_GRPC_HOST=0.0.0.0 \
    DAGSTER_GRPC_PORT=4000 \
    LATAM_CODE_LOCATION_HOST=code-location \
    LATAM_CODE_LOCATION_PORT=4000 \
    DAGSTER_WEBSERVER_HOST=0.0.0.0 \
    DAGSTER_WEBSERVER_PORT=3000 \
    LATAM_API_HOST=0.0.0.0 \
    LATAM_API_PORT=8080 \
    LATAM_API_METRICS_HOST=0.0.0.0 \
    LATAM_API_METRICS_PORT=9809 \
    LATAM_EXPORTER_HOST=0.0.0.0 \
    LATAM_EXPORTER_PORT=9808 \
    LATAM_UI_HOST=0.0.0.0 \
    LATAM_UI_PORT=3000
COPY --from=deps /opt/latam/venv /opt/latam/venv
COPY --from=project /stage/ /opt/latam/venv/
COPY --chmod=0755 infra/images/entrypoint.sh /usr/local/bin/latam-entrypoint
COPY --chmod=0755 infra/images/healthcheck.py /usr/local/bin/latam-healthcheck
COPY infra/dagster/dagster.yaml /opt/dagster/home/dagster.yaml
COPY --from=project /app /app
USER 10001:10001
WORKDIR /home/latam
EXPOSE 3000 4000 8080 9808 9809
HEALTHCHECK --interval=30s --timeout=30s --start-period=120s --retries=3 \
    CMD ["/usr/local/bin/latam-healthcheck"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/latam-entrypoint"]

# the image's description; `make images` adds org.opencontainers.image.revision and .created as
# build labels (build arguments that change with every commit would void the layer cache)
ARG BASE_IMAGE
ARG BASE_DIGEST=
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="latam-platform" \
      org.opencontainers.image.description="LATAM airline data platform: Dagster code location, webserver and daemon, REST API, metrics exporter, UI proxy" \
      org.opencontainers.image.vendor="LATAM data platform" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      org.opencontainers.image.base.digest="${BASE_DIGEST}"
