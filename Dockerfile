# syntax=docker/dockerfile:1
# Venus gateway image: `docker build -t venus-gateway:0.1.0 .`, then `docker run venus-gateway:0.1.0`;
# `venus serve` flags may follow, and settings also come from VENUS_* variables.

# --- build: the Venus wheel and the wheels of its dependencies
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY venus_grpc ./venus_grpc
RUN pip wheel --wheel-dir /wheels .

# --- runtime: a virtualenv with only the wheels installed, run as an unprivileged user
FROM python:3.11-slim-bookworm
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/venus/bin:$PATH
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/venus \
    && /opt/venus/bin/pip install --no-index --find-links=/wheels /wheels/venus_gateway-*.whl \
    && groupadd --system --gid 10001 venus \
    && useradd --system --uid 10001 --gid venus --no-create-home --shell /usr/sbin/nologin venus
USER 10001:10001
# gRPC, the HTTP port (Connect, gRPC-Web; served when VENUS_HTTP_ENABLED=true), then Prometheus /metrics
EXPOSE 50051 8080 9464
ENTRYPOINT ["venus", "serve"]
