FROM python:3.11-slim
# EXTRAS=cuda builds the GPU worker image (JAX with CUDA 12 wheels).
ARG EXTRAS=""
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY netlens ./netlens
COPY storage ./storage
COPY worker ./worker
COPY webapp ./webapp
COPY migrations ./migrations
RUN pip install --no-cache-dir ".${EXTRAS:+[$EXTRAS]}"
ENV NETLENS_HOME=/data
ENTRYPOINT ["netlens"]
