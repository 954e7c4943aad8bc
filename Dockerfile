# pisano-mock in a container (SPEC 2.5). Build: docker build -t pisano-mock .
# Run:   docker run -p 8080:8080 -e PISANO_MOCK_ADMIN_TOKEN=change-me pisano-mock
# Without PISANO_MOCK_ADMIN_TOKEN the container refuses to start (exit 2, saying why): on 0.0.0.0
# anyone reaching the port could read the journal and reconfigure the emulator. Arguments after the
# image name are added to `serve`: `--workers 2` (with PISANO_MOCK_STORAGE=redis://...),
# `--allowed-host NAME`, `--no-throttle`, `--insecure-admin` (an emulator open to whoever reaches it).
# tests/test_container.py runs this file's ENTRYPOINT and HEALTHCHECK, with its ENV, outside Docker.

# Stage 1: build the wheel and install it into a virtualenv; only the virtualenv goes on.
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY fixtures/default.toml fixtures/default.toml
COPY mockserver/ mockserver/
COPY contracts/ contracts/
RUN python -m venv /opt/pisano-mock \
    && /opt/pisano-mock/bin/pip install --no-cache-dir /src

# Stage 2: the same slim base, the virtualenv, a user without privileges. No compiler, no sources.
FROM python:3.11-slim-bookworm
ENV PATH=/opt/pisano-mock/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PISANO_MOCK_STORAGE=memory://
RUN groupadd --system --gid 10001 pisano \
    && useradd --system --uid 10001 --gid pisano --no-create-home --shell /usr/sbin/nologin pisano
COPY --from=build /opt/pisano-mock /opt/pisano-mock
USER 10001:10001
EXPOSE 8080
# slim has no curl: the image's own Python asks /__mock/health, with the admin token when one is
# set (with one, the admin API answers nobody without it, loopback included). Exit 1 on no answer.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; t = os.environ.get('PISANO_MOCK_ADMIN_TOKEN'); r.urlopen(r.Request('http://127.0.0.1:8080/__mock/health', headers={'X-Pisano-Mock-Admin-Token': t} if t else {}), timeout=2)"]
# Exec form: `serve` is PID 1 and gets SIGTERM itself (graceful shutdown, in-flight answers sent).
# The admin token comes from PISANO_MOCK_ADMIN_TOKEN, the storage from PISANO_MOCK_STORAGE.
ENTRYPOINT ["pisano-mock", "serve", "--host", "0.0.0.0", "--port", "8080"]
CMD []
