# One image for every role: gunicorn (web), celery worker, celery beat and the one-shot
# migrate step; docker-compose.yml and deploy/k8s/ pick the command. See docs/deploy.md.
FROM python:3.13-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Node.js: stdio MCP servers are often started with npx. tini: PID 1 that reaps the
# orphaned grandchildren of a killed stdio server (npx's node) and forwards signals.
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm tini \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 app
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Production settings want real keys; collectstatic encrypts nothing, so throwaway ones do.
RUN DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    MCPCONTROL_ENCRYPTION_KEYS="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
    MCPCONTROL_RUN_DIR=/tmp/build-run \
    python manage.py collectstatic --noinput >/dev/null \
 && rm -rf /tmp/build-run \
 && install -d -o app -g app /app/.run
USER app
EXPOSE 8000
ENTRYPOINT ["tini", "--"]
# Workers: WEB_CONCURRENCY (read by gunicorn.conf.py).
CMD ["gunicorn", "mcpcontrol.asgi", "--worker-class", "uvicorn_worker.UvicornWorker", "--bind", "0.0.0.0:8000"]
