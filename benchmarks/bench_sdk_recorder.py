"""nl.Recorder's overhead (issue 15, part 2): the same user training loop with and without
the Recorder recording every epoch, on the core benchmark's MLP.

Usage: .venv/bin/python benchmarks/bench_sdk_recorder.py [--quick] [--rounds N] [--epochs N]
       [--server]
Prints a table and writes benchmarks/results/sdk_recorder.json (--quick: _quick.json).

The model is bench_core.py's section 1 as a user would write it in Flax NNX: 784-128-64-10,
relu applied in the parent module, 60,000 random inputs of 10 classes, batch 128, Adam
(1e-3), probe of 1,000 inputs. The user's loop: a jitted optax step per batch over data kept
on the device, the epoch's shuffle drawn on the device, `float(loss)` once per epoch. Three
variants run in interleaved rounds of the same epochs:
  plain     the loop alone
  computed  + Recorder.log every epoch into a sink whose thread only waits for the host
            copies (the compiled snapshot and its copy, nothing written)
  recorded  + Recorder.log every epoch into SQLite (the real LocalSink and writer thread)
  streamed  (--server) + Recorder.log every epoch to a team server: a `netlens serve
            --workers 0` on loopback, on its own SQLite home, through nl.connect's RestSink
            (the .npz chunks over HTTP; the server process shares this machine's CPUs)
Each round starts with another variant (so none always follows the previous round's last
write). A round's window runs from its first epoch to its last epoch's loss on the host, and for
the recorded variant to Recorder.close() having written every epoch. Last, 40 calls of
Recorder.log back to back without training (to SQLite, closed at the end) give what
recording one epoch costs when nothing overlaps with it: 1 + that / the loop's epoch bounds
the ratio with a figure that the machine's noise moves much less. The Recorder is made
(traced and compiled once) before the window; that time is reported apart. Ratios are the
median of the rounds' own ratios (bench_core.py's method: drift between rounds cancels out).
"""

from __future__ import annotations

import argparse
import platform
import queue
import statistics
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import quietest, report, sqlite_db  # noqa: E402

from netlens.sdk.recorder import Recorder  # noqa: E402
from netlens.sdk.sink import LocalSink, NewRun, RestSink, StoredRun  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "sdk_recorder.json"
N_TRAIN, N_PROBE, FEATURES, CLASSES, BATCH = 60_000, 1_000, 784, 10, 128
TARGET = 1.10


class MLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.hidden_1 = nnx.Linear(FEATURES, 128, rngs=rngs)
        self.hidden_2 = nnx.Linear(128, 64, rngs=rngs)
        self.output = nnx.Linear(64, CLASSES, rngs=rngs)

    def __call__(self, x):
        return self.output(nnx.relu(self.hidden_2(nnx.relu(self.hidden_1(x)))))


class HostCopySink:
    """A sink that writes nothing: a thread waits for each epoch's host copies, as the real
    writer thread does before its SQL (the part of the Recorder's cost that is not the
    database)."""

    def __init__(self):
        self._queue: queue.Queue = queue.Queue(maxsize=8)
        self._thread: threading.Thread | None = None

    def create(self, run: NewRun) -> int:
        return 0

    def load(self, run_id: int) -> StoredRun:
        raise LookupError("nothing stored")

    def reopen(self, run_id: int, **started) -> None:
        pass

    def writer(self, run_id: int, *, given_states: bool = False):
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while (chunk := self._queue.get()) is not None:
            for value in chunk.tensors.values():
                np.asarray(value)

    def put(self, chunk) -> None:
        self._queue.put(chunk)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def finish(self, run_id, status, error, epochs_total=None) -> None:
        pass

    def handle(self, run_id: int):
        return None


def data(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((N_TRAIN, FEATURES), dtype=np.float32)
    y = rng.integers(0, CLASSES, N_TRAIN, np.int32)
    probe = rng.random((N_PROBE, FEATURES), dtype=np.float32)
    return x, y, probe, rng.integers(0, CLASSES, N_PROBE)


class UserLoop:
    """What a user writes: model, optimizer, a jitted step; one `epoch()` per epoch."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.model = MLP(nnx.Rngs(0))
        self.graphdef, self.params = nnx.split(self.model, nnx.Param)
        self.tx = optax.adam(1e-3)
        self.opt_state = self.tx.init(self.params)
        self.x, self.y = jnp.asarray(x), jnp.asarray(y)
        self.steps = N_TRAIN // BATCH
        graphdef, tx, xs, ys = self.graphdef, self.tx, self.x, self.y

        @jax.jit
        def step(params, opt_state, idx):
            def loss_fn(p):
                logits = nnx.merge(graphdef, p)(xs[idx])
                return optax.softmax_cross_entropy_with_integer_labels(logits, ys[idx]).mean()

            loss, grads = jax.value_and_grad(loss_fn)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        @jax.jit
        def batches(epoch):
            perm = jax.random.permutation(jax.random.fold_in(jax.random.key(0), epoch), N_TRAIN)
            return perm[: self.steps * BATCH].reshape(self.steps, BATCH)

        self.step, self.batches = step, batches

    def epoch(self, e: int) -> float:
        order = self.batches(e)
        loss = None
        for b in range(self.steps):
            self.params, self.opt_state, loss = self.step(self.params, self.opt_state, order[b])
        return float(loss)


def timed_round(
    loop: UserLoop, first: int, epochs: int, recorder: Recorder | None
) -> tuple[float, float]:
    """(wall, CPU) seconds per epoch of `epochs` epochs of the user's loop, logging each to
    `recorder`. CPU is this process's, every thread's (XLA's, the writer's); kept in the JSON
    only: XLA's threads spin more or less with the machine's load, so it is no steadier."""
    start, cpu = time.perf_counter(), time.process_time()
    for e in range(first, first + epochs):
        loss = loop.epoch(e)
        if recorder is not None:
            recorder.log(e, params=loop.params, loss=loss)
    if recorder is not None:
        recorder.close()
    return (time.perf_counter() - start) / epochs, (time.process_time() - cpu) / epochs


def team_server(tmp: str):
    """A `netlens serve --workers 0` with logins required on its own SQLite home, a member
    and her token, and the connection nl.connect makes to it: (server, connection)."""
    from bench_api import Server

    from netlens.sdk import connection
    from netlens.storage import users

    home = Path(tmp) / "server"
    home.mkdir()
    server_db = sqlite_db(str(home))
    member = users.create_user(server_db, "bench", "a long bench password")
    token = users.create_token(server_db, member.id, "bench")[1]
    server = Server(home, server_db.url)
    try:
        link = connection.connect(server.url, token=token)
    except Exception:
        server.stop()
        raise
    connection.disconnect()  # the sink holds the connection; nothing else is sent there
    return server, link


def bench(epochs: int, rounds: int, tmp: str, streamed: bool = False) -> dict:
    x, y, probe, labels = data()
    loop = UserLoop(x, y)
    loop.epoch(0)  # compile the step
    db = sqlite_db(tmp)
    server, link = team_server(tmp) if streamed else (None, None)
    try:
        return _bench(loop, db, link, epochs, rounds, probe, labels)
    finally:
        if server is not None:
            server.stop()


def _bench(loop, db, link, epochs, rounds, probe, labels) -> dict:
    times: dict[str, list[float]] = {"plain": [], "computed": [], "recorded": []}
    if link is not None:
        times["streamed"] = []
    cpu: dict[str, list[float]] = {k: [] for k in times}
    make_s = []
    epoch = 1
    variants = list(times)
    n = len(variants)
    for r in range(rounds):  # each round starts with another variant: no order bias
        for variant in variants[r % n :] + variants[: r % n]:
            recorder = None
            if variant != "plain":
                sink = {
                    "computed": HostCopySink,
                    "recorded": lambda: LocalSink(db),
                    "streamed": lambda: RestSink(link),
                }[variant]()
                start = time.perf_counter()
                recorder = Recorder(
                    loop.model, probe=probe, probe_labels=labels, name=f"bench-{r}", sink=sink
                )
                make_s.append(time.perf_counter() - start)
            wall, used = timed_round(loop, epoch, epochs, recorder)
            times[variant].append(wall)
            cpu[variant].append(used)
            epoch += epochs
    # Recorder.log alone, back to back (no training between): the most that recording every
    # epoch can add to an epoch when nothing overlaps with it
    logs = 40
    recorder = Recorder(loop.model, probe=probe, probe_labels=labels, sink=LocalSink(db))
    start = time.perf_counter()
    for e in range(logs):
        recorder.log(epoch + e, params=loop.params, loss=1.0)
    recorder.close()
    log_only_ms = (time.perf_counter() - start) / logs * 1e3
    out = {
        "log_only_ms": log_only_ms,
        "epochs_per_round": epochs,
        "rounds": rounds,
        "times_ms": {k: [round(t * 1e3, 3) for t in v] for k, v in times.items()},
        "recorder_made_s": statistics.median(make_s),
    }
    out["cpu_ms"] = {k: [round(t * 1e3, 3) for t in v] for k, v in cpu.items()}
    for variant, values in cpu.items():
        out[f"{variant}_cpu_ms"] = statistics.median(values) * 1e3
        if variant != "plain":
            out[f"{variant}_cpu_added_ms"] = statistics.median(
                [(t - base) * 1e3 for t, base in zip(values, cpu["plain"], strict=True)]
            )
    for variant, values in times.items():
        out[f"{variant}_ms"] = statistics.median(values) * 1e3
        if variant != "plain":
            out[f"{variant}_ratio"] = statistics.median(
                [t / base for t, base in zip(values, times["plain"], strict=True)]
            )
            out[f"{variant}_ratio_best"] = min(values) / min(times["plain"])
    epoch_bytes = 4 * (
        sum(int(np.prod(v.shape)) for v in jax.tree.leaves(loop.params))
        + N_PROBE * (128 + 64 + 10 + 10)
    )
    out["bytes_per_epoch"] = epoch_bytes
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 epoch per round, 2 rounds")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per round and variant")
    parser.add_argument("--tries", type=int, default=3, help="re-runs while the CPU is busy")
    parser.add_argument(
        "--server", action="store_true", help="also stream to a local team server (RestSink)"
    )
    args = parser.parse_args()
    rounds, epochs = (2, 1) if args.quick else (args.rounds, args.epochs)
    with tempfile.TemporaryDirectory() as tmp:
        section = quietest(args.tries, bench, epochs, rounds, tmp, args.server)
    results = {
        "date": date.today().isoformat(),
        "machine": {"python": platform.python_version(), "cpus": platform.machine()},
        "versions": {"jax": jax.__version__, "flax": __import__("flax").__version__},
        "mlp": section,
    }
    rows = [
        ("MLP user loop alone (ms/epoch)", f"{section['plain_ms']:.0f}", "", None),
        (
            "+ Recorder, computed and copied, not written",
            f"{section['computed_ratio']:.3f}",
            "",
            None,
        ),
        (
            "+ Recorder to SQLite, every epoch / loop alone",
            f"{section['recorded_ratio']:.3f}",
            f"≤ {TARGET}",
            "yes" if section["recorded_ratio"] <= TARGET else "NO",
        ),
        (
            "Recorder.log alone to SQLite, back to back, ms/epoch",
            f"{section['log_only_ms']:.1f}",
            "",
            None,
        ),
        (
            "bound: 1 + that / loop alone",
            f"{1 + section['log_only_ms'] / section['plain_ms']:.3f}",
            f"≤ {TARGET}",
            None,
        ),
        *(
            [
                (
                    "+ Recorder streamed to a local team server / loop alone",
                    f"{section['streamed_ratio']:.3f}",
                    "",
                    None,
                )
            ]
            if "streamed_ratio" in section
            else []
        ),
        ("Recorder made (trace + compile), s", f"{section['recorder_made_s']:.2f}", "", None),
        ("recorded per epoch, MB", f"{section['bytes_per_epoch'] / 1e6:.2f}", "", None),
    ]
    path = RESULTS.with_name("sdk_recorder_quick.json") if args.quick else RESULTS
    report(results, rows, path)


if __name__ == "__main__":
    main()
