# The application image: one image for web (gunicorn, the entrypoint), the Celery worker and beat,
# and the migration Job, each chosen by its command. Built here by `make image` (deploy/image/).
#
#   BASE             a Debian bookworm image with Python 3.11 and ca-certificates (the official
#                    slim image by default; `make image` uses one made by mmdebstrap)
#   EXTRA_CA_CERTS   PEM text of CA certificates to trust while building only (a TLS-intercepting
#                    proxy in front of the package index); the runtime stage never has them
ARG BASE=python:3.11-slim-bookworm

# --- builder: the runtime lock into a virtualenv, the code, the collected static files ----------
FROM ${BASE} AS builder
ARG EXTRA_CA_CERTS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
COPY requirements.lock /tmp/requirements.lock
# One RUN: with vfs storage every layer is a full copy of the file system.
RUN set -eu; \
    if [ -n "$EXTRA_CA_CERTS" ]; then \
        printf '%s\n' "$EXTRA_CA_CERTS" | awk '/BEGIN CERTIFICATE/ { n++ } \
            { print > ("/usr/local/share/ca-certificates/build-extra-" n ".crt") }'; \
        update-ca-certificates > /dev/null 2>&1; \
    fi; \
    python3 -m venv /opt/venv; \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
        /opt/venv/bin/pip install --require-hashes -r /tmp/requirements.lock; \
    /opt/venv/bin/pip uninstall -y -q pip setuptools 2>/dev/null || true
COPY . /app
WORKDIR /app
# Static files at build time (hashed names, gzip copies): pods need no volume and keep a
# read-only root filesystem. Base settings: collecting needs no secret and no service.
RUN DJANGO_SETTINGS_MODULE=config.settings.base DJANGO_STATIC_ROOT=/app/staticfiles \
        /opt/venv/bin/python manage.py collectstatic --noinput -v 0 \
    && find /app -name '__pycache__' -prune -exec rm -rf {} +

# --- runtime: the interpreter, the virtualenv and the app; no compiler, no pip, no build CA ------
FROM ${BASE}
# A passwd entry for the uid, so getpass-style lookups (operator names, Celery) work; Kubernetes
# runs the pods as this uid (runAsUser: 10001).
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin app
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    DJANGO_STATIC_ROOT=/app/staticfiles \
    GUNICORN_BIND=0.0.0.0:8000
USER 10001:10001
EXPOSE 8000
# Web by default; worker, beat and migrations override the command (deploy/k8s), e.g.
#   podman run --entrypoint celery IMAGE -A config worker
ENTRYPOINT ["gunicorn"]
CMD ["-c", "deploy/gunicorn/gunicorn.conf.py", "config.wsgi"]
