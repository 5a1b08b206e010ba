# Production image: gunicorn serving app_example (docs/serving.md).
#   docker build -t bookmarks . && docker run -p 127.0.0.1:8000:8000 bookmarks
# It listens on 0.0.0.0 inside the container (port publishing needs it); `-p`
# chooses what the host exposes: 127.0.0.1 keeps it to this machine.
# Configuration comes from the environment:
#   DATABASE_URL          sqlite:////var/lib/app/app_example.db (default) or
#                         postgresql://user:password@host:5432/name
#   WEB_CONCURRENCY       gunicorn workers (default: 2 * cores + 1)
#   FRAMEWORK_SECRET_KEY  the secret key (never baked in; without it a random one
#                         is kept in /var/lib/app/app_example.secret_key, 0600)
#   FRAMEWORK_ALLOWED_HOSTS  host names served, comma-separated
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_URL=sqlite:////var/lib/app/app_example.db \
    FRAMEWORK_METRICS_DIR=/tmp/app-metrics

WORKDIR /app
COPY pyproject.toml setup.py MANIFEST.in README.md LICENSE ./
COPY framework ./framework
COPY app_example ./app_example
# A C compiler for the install only, for the counters' compiled receivers
# (framework/metrics/_counting.c, docs/metrics.md); removed in the same layer.
# Without it the install still succeeds and the counters count in Python.
# The sources go once installed: /app is on the workers' path (app_example),
# and a copy of framework/ there would shadow the installed package.
# (DL3008 asks for pinned apt versions: the base image's Debian release pins them.)
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-cache-dir '/app[orm,postgres]' \
    && rm -rf /app/framework /app/build /app/framework.egg-info \
    && python -c "from framework import metrics; assert metrics.COMPILED" \
    && apt-get purge -y --auto-remove gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 app \
    && useradd --system --create-home --uid 10001 --gid app app \
    && mkdir -p /var/lib/app \
    && chown 10001:10001 /var/lib/app

USER 10001:10001
VOLUME ["/var/lib/app"]
EXPOSE 8000

# The check asks for /healthz with a Host header FRAMEWORK_ALLOWED_HOSTS allows
# (its first plain name), or it would get a 400 once that is set.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import json, os, urllib.request as u; raw = os.environ.get('FRAMEWORK_ALLOWED_HOSTS', '') or 'localhost'; hosts = json.loads(raw) if raw.lstrip()[:1] == '[' else raw.split(','); host = next((h.strip().lstrip('.') for h in hosts if h.strip() not in ('', '*')), 'localhost'); u.urlopen(u.Request('http://127.0.0.1:8000/healthz', headers={'Host': host}), timeout=4)"]

# `framework serve` migrates the database first, then starts gunicorn. Threaded
# workers (gthread): a slow client holds one thread, not a whole worker
# (docs/serving.md).
CMD ["framework", "serve", "--bind", "0.0.0.0:8000", "--threads", "4"]
