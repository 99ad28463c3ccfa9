# attnscope in one image: the page, the REST API and the trained English→Japanese model.
#
#   docker build -t attnscope .
#   docker run -p 8000:8000 attnscope          # then open http://localhost:8000
#
# Build arguments:
#   TORCH_INDEX_URL  where torch comes from; the default is PyTorch's CPU-only index, which keeps the
#                    image small. For a GPU image pass a CUDA index instead, e.g.
#                    --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 (see README,
#                    "Run with Docker"); its wheels carry the CUDA libraries, so the base stays the same.
#   TORCH_VERSION    the torch release (the one `make` pins).
#   PIP_FIND_LINKS   a folder of wheels that stands in for the indexes where they cannot be reached
#                    (unset normally); pip reads it from the environment in every install below.
#   EXTRAS           optional features to install, e.g. --build-arg EXTRAS=hf for Hugging Face models
#                    (mount their directories and point ATTNSCOPE_MODELS or ATTNSCOPE_MODEL_DIR at them).

FROM python:3.11-slim AS builder
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0
ARG PIP_FIND_LINKS
ARG EXTRAS=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/venv/bin:$PATH
# `python3`: some Python images have no `python` until a venv provides one.
RUN python3 -m venv /opt/venv

# torch alone from its index; --no-deps because that index need not hold torch's pure-Python
# dependencies (a local wheel folder does not), and the next step takes them from PyPI.
RUN pip install --no-deps --index-url "$TORCH_INDEX_URL" "torch==$TORCH_VERSION"

# The runtime dependencies listed in pyproject.toml, in their own layer so that editing the
# sources does not reinstall them. Pinning torch again keeps the build installed above.
WORKDIR /app
COPY pyproject.toml ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt "torch==$TORCH_VERSION"

# torch's wheel ships C++ headers and C++ test programs, needed only to compile extensions or
# to test torch itself: about 180 MB that serving never touches.
RUN torch_dir=$(python -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("torch").origin))') \
 && rm -rf "$torch_dir/include" "$torch_dir/test" "$torch_dir"/bin/test_* "$torch_dir"/bin/*Test

# The app serves static/ and templates/ from beside its package, so the sources stay together in
# /app and are installed in place, which also puts the `attnscope` command on PATH.
COPY README.md ./
COPY app ./app
COPY static ./static
COPY templates ./templates
COPY model ./model
COPY backends ./backends
COPY analysis ./analysis
RUN pip install --no-deps -e . && python -m compileall -q app model backends analysis \
 && if [ -n "$EXTRAS" ]; then pip install -e ".[$EXTRAS]" "torch==$TORCH_VERSION"; fi


FROM python:3.11-slim
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin attnscope
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
WORKDIR /app

# Every ATTNSCOPE_* setting of app/settings.py can be set with `docker run -e` (see README).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ATTNSCOPE_HOST=0.0.0.0 \
    ATTNSCOPE_PORT=8000 \
    ATTNSCOPE_WORKERS=1
USER attnscope
EXPOSE 8000

# No curl in slim images: ask /healthz with Python's standard library (non-2xx raises, exit 1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ATTNSCOPE_PORT', '8000'), timeout=4)"]

# `exec` makes the server PID 1, so `docker stop` reaches it and it shuts down cleanly.
CMD ["sh", "-c", "exec attnscope serve --workers \"$ATTNSCOPE_WORKERS\""]
