# syntax=docker/dockerfile:1
# One image for the api and the workers; docker-compose.yml gives each service its command.
#   docker build -t polytag .
# PyPI's default torch wheels are CUDA builds (they also run on the CPU), so the GPU worker needs
# nothing more than the NVIDIA container toolkit on its host. For a smaller CPU-only image:
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu -t polytag .
FROM python:3.11-slim

ARG TORCH_INDEX_URL=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    POLYTAG_DATA_DIR=/data \
    HF_HOME=/home/polytag/.cache/huggingface

RUN useradd --create-home --uid 10001 --user-group polytag \
    && mkdir -p /data /home/polytag/.cache \
    && chown polytag:polytag /data /home/polytag/.cache

WORKDIR /app

# Dependencies first, from pyproject.toml alone: this multi-gigabyte layer is rebuilt only when
# the dependency list changes, not on every code change.
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && if [ -n "$TORCH_INDEX_URL" ]; then \
         pip install --index-url "$TORCH_INDEX_URL" $(grep -E '^(torch|torchvision)[=<>~ ]' /tmp/requirements.txt); \
       fi \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the code. The package is installed editable because templates, static files and
# migrations are read from the source tree next to it.
COPY README.md alembic.ini ./
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
COPY docker ./docker
COPY worker ./worker
COPY app ./app
RUN pip install --no-deps -e . \
    && python -c "import app.main, worker.celery_app"

USER polytag
EXPOSE 8000

# Liveness of the web process (the python image has no curl). Worker services override it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["polytag", "serve", "--no-worker", "--host", "0.0.0.0"]
