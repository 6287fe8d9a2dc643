# One image for the API and the workers (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY eoc_ntk ./eoc_ntk
COPY service ./service
COPY jobs ./jobs
RUN pip install --no-cache-dir .
EXPOSE 8000
# Embedded mode unless REDIS_URL is set; the same command as in the README.
CMD ["python", "-m", "service", "--host", "0.0.0.0"]
