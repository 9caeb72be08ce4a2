# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 VIGIL_VAR_DIR=/var/lib/vigil STATIC_ROOT=/app/staticfiles
WORKDIR /app
COPY requirements.lock .
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
RUN SECRET_KEY=build-only-not-used python manage.py collectstatic --noinput \
    && useradd --system --home /var/lib/vigil vigil && mkdir -p /var/lib/vigil && chown vigil /var/lib/vigil
USER vigil
EXPOSE 8000
CMD ["gunicorn", "console.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
