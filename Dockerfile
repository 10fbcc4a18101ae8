# The production image: web (uvicorn, ASGI: admin, API, websocket) and RQ workers run from it.
# See compose.yaml for the whole stack and README "Production" for its settings.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles \
    # web worker processes (config/serve.py); bench/ingest.py measures the count to use for 2 cores.
    WEB_CONCURRENCY=3

WORKDIR /app
RUN groupadd --system app && useradd --system --gid app --home-dir /app --shell /usr/sbin/nologin app

# Requirements first, so code changes do not reinstall them. Every package ships a wheel.
COPY requirements/base.txt requirements/base.txt
RUN pip install -r requirements/base.txt

COPY . .
# Static files are collected into the image (WhiteNoise serves them). The key below exists only
# for this build step and is not kept in the image: run it with DJANGO_SECRET_KEY set (compose
# refuses to start without one).
RUN DJANGO_DEBUG=0 DJANGO_SECRET_KEY=build-only-collectstatic-key-never-used-at-run-time \
        python manage.py collectstatic --no-input --verbosity 0 \
    && mkdir -p /app/var \
    && chown app:app /app/var

USER app
EXPOSE 8000
# config/serve.py: WEB_CONCURRENCY uvicorn workers (uvloop, httptools), a SO_REUSEPORT socket each.
CMD ["python", "-m", "config.serve", "--host", "0.0.0.0", "--port", "8000", "--timeout-graceful-shutdown", "30"]
