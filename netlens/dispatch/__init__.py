"""Where the web app and the workers meet, without JAX: sending jobs and analyses to the broker.

- `celery_app`: the Celery app, the task names on the broker, sending, queue sizes.
- `submission`: submit, sweep, retry, requeue a run; request a run's signature analyses.
- `analysis_requests`: which epoch to analyse and what to queue (`AnalysisError`).
- `reaper`: requeue jobs whose worker died, resend jobs whose broker message was lost.
- `heartbeat`: a worker process's row in the `workers` table.

Imports netlens.storage, Celery and kombu; never JAX, flax or optax, never netlens.webapp or
netlens.worker (tests/unit/test_layers.py checks the import directions).
"""
