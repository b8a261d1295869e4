"""Reproduce the case study of docs/case-study-digits.md: digits 1 vs 7 with unseen 3s and 4s.

    .venv/bin/python scripts/case_study_digits.py [--epochs 100] [--out docs/case-study]
        [--mnist PATH/TO/mnist.npz]

Trains the `digits-1-7` preset (and, with --mnist, the same network on MNIST 1 vs 7 with 3s and
4s as unseen probe inputs), runs the worker's signature analyses at an early and at the last
epoch, draws the signatures page's own figures (the page callbacks, called directly) and saves
them as PNG with kaleido, and writes every number quoted in the case study to
<out>/numbers-<dataset>.json. Takes about 1 minute for digits.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from netlens.storage.db import Database  # noqa: E402
from netlens.storage.migrate import upgrade  # noqa: E402
from netlens.storage.presets import get_preset  # noqa: E402
from netlens.storage.runs import create_run  # noqa: E402
from netlens.storage.settings import Settings  # noqa: E402
from netlens.storage.spec import parse_spec  # noqa: E402
from netlens.worker.analyze import run_analysis  # noqa: E402
from netlens.worker.runner import run_experiment  # noqa: E402

EARLY_EPOCH = 1


def train(db: Database, epochs: int, mnist: Path | None) -> int:
    data = get_preset("digits-1-7").model_dump()
    data["training"]["epochs"] = epochs
    if mnist is not None:
        data["name"] = "mnist-1-7"
        data["dataset"] = {
            "name": "mnist",
            "path": str(mnist),
            "classes": [1, 7],
            "ood_classes": [3, 4],
            "n_samples": 4000,
        }
    run_id = create_run(db, parse_spec(data))
    status = run_experiment(db, run_id, mnist.parent if mnist else None)
    if status != "succeeded":
        raise SystemExit(f"training ended {status}")
    return run_id


def numbers(summary: dict) -> dict:
    """The figures the case study quotes, from one epoch's stored summary."""
    layers = summary["layers"]
    out = {
        "epoch": summary["epoch"],
        "n_probe": summary["n_probe"],
        "n_ood": summary["n_ood"],
        "accuracy": summary["accuracy"],
        "separability": {
            r["layer"]: {"silhouette": r["silhouette"], "linear_probe": r["probe_accuracy"]}
            for r in summary["separability"]
        },
        "clusters": {
            layer: {
                "k": summary["clusters"][layer]["k"],
                "silhouette": summary["clusters"][layer]["silhouette"],
                "purity": [c["purity"] for c in summary["clusters"][layer]["clusters"]],
            }
            for layer in layers
        },
        "atypical": {
            label: entry["atypical"][:3]
            for label, entry in summary["class_signatures"][layers[0]]["classes"].items()
        },
        "ood": [
            {
                "label": e["label"],
                "predicted": e["predicted"],
                "confidence": e["confidence"],
                "layers": {
                    layer: {
                        "clusters": e["layers"][layer]["clusters"],
                        "distance_ratio": e["layers"][layer]["distance_ratio"],
                    }
                    for layer in layers
                },
            }
            for e in summary["ood"]
        ],
    }
    return out


def figures(
    settings: Settings, db: Database, run_id: int, last: int, out: Path, tag: str
) -> list[Path]:
    """The signatures page's figures, drawn by its own callbacks, saved as PNG."""
    from netlens.webapp.app import create_app

    app = create_app(settings, db)
    page = sys.modules["pages.signatures"]
    written = []
    with app.server.app_context():
        version = page.status(None, 0, run_id, None)[4]
        index = last  # every epoch is recorded: the slider index is the epoch
        shots = {
            "separability": page.separability(
                "separability", index, "silhouette of true classes", version, run_id
            ),
            "clusters-hidden_1": page.clusters("clusters", index, "hidden_1", version, run_id),
            "flow": (page.flow("flow", index, version, run_id),),
            "umap-hidden_1": (
                page.projection("projections", index, "hidden_1", "umap", "class", version, run_id),
            ),
            "umap-hidden_3-correct": (
                page.projection(
                    "projections", index, "hidden_3", "umap", "correct", version, run_id
                ),
            ),
            "class-means-hidden_1": page.class_signatures(
                "classes", index, "hidden_1", version, run_id
            )[:2],
            "unseen-hidden_3": page.unseen("ood", index, "hidden_3", version, run_id)[1:],
        }
        for name, figs in shots.items():
            for i, fig in enumerate(figs):
                path = out / f"{tag}-{name}{'' if len(figs) == 1 else f'-{i + 1}'}.png"
                wide = name == "flow"
                fig.write_image(str(path), width=1200 if wide else 800, height=560 if wide else 460)
                written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "case-study")
    parser.add_argument("--mnist", type=Path, help="a local MNIST .npz or IDX folder file")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="netlens-case-study-"))
    settings = Settings(home=home, database_url=None, broker_url=None)
    db = Database.from_settings(settings)
    upgrade(db)
    tag = "mnist" if args.mnist else "digits"
    run_id = train(db, args.epochs, args.mnist)
    report = {}
    for epoch in (EARLY_EPOCH, args.epochs):
        report[f"epoch_{epoch}"] = numbers(run_analysis(db, run_id, "epoch", epoch))
        run_analysis(db, run_id, "umap", epoch)  # the figures below draw UMAP: asked for
    timeline = run_analysis(db, run_id, "timeline", args.epochs)
    report["timeline"] = {
        "epochs": timeline["epochs"],
        "linear_probe": [
            {r["layer"]: r["probe_accuracy"] for r in frame} for frame in timeline["separability"]
        ],
    }
    (args.out / f"numbers-{tag}.json").write_text(json.dumps(report, indent=1))
    for path in figures(settings, db, run_id, args.epochs, args.out, tag):
        print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    print(json.dumps(report[f"epoch_{args.epochs}"]["separability"], indent=1))


if __name__ == "__main__":
    main()
