"""TLS settings travel in the two URLs (README, "Workers on several machines"): NetLens passes
them through untouched to libpq (PostgreSQL) and kombu (Redis). The real connections over TLS
are made by tests/integration/test_multi_host.py; this checks the parsing, which needs no
server."""

from __future__ import annotations

import ssl

from netlens.dispatch.celery_app import make_celery
from netlens.storage.db import make_engine
from netlens.storage.settings import Settings


def test_a_rediss_url_gives_the_broker_connection_its_certificate_checks():
    url = "rediss://:secret@redis.lab:6380/0?ssl_cert_reqs=required&ssl_ca_certs=/etc/lab/ca.pem"
    app = make_celery(Settings(broker_url=url))
    conn = app.connection_for_write()
    assert conn.transport_cls == "rediss" and (conn.hostname, conn.port) == ("redis.lab", 6380)
    assert conn.ssl == {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": "/etc/lab/ca.pem"}
    assert conn.password == "secret"


def test_a_postgresql_url_keeps_its_tls_parameters_for_libpq():
    url = (
        "postgresql://netlens:pw@db.lab:5432/netlens?sslmode=verify-full"
        "&sslrootcert=/etc/lab/ca.pem&sslcert=/etc/lab/worker.pem&sslkey=/etc/lab/worker.key"
    )
    engine = make_engine(Settings(database_url=url).resolved_database_url)
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        assert engine.url.host == "db.lab" and engine.url.database == "netlens"
        _, params = engine.dialect.create_connect_args(engine.url)
        assert params["sslmode"] == "verify-full"
        assert params["sslrootcert"] == "/etc/lab/ca.pem"
        assert params["sslcert"] == "/etc/lab/worker.pem"
        assert params["sslkey"] == "/etc/lab/worker.key"
    finally:
        engine.dispose()
