FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY netlens ./netlens
COPY storage ./storage
COPY worker ./worker
COPY webapp ./webapp
COPY migrations ./migrations
RUN pip install --no-cache-dir .
ENV NETLENS_HOME=/data
ENTRYPOINT ["netlens"]
