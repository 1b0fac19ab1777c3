"""The models bundled with hmviz: one trained model of every family for the sample data.

They live in ``models/<name>/`` (safetensors weights + model card) so that the app works on first
start without training. Remake them all with::

    python -m hmviz.bundled --out models

which trains every family on ``sample_data/`` (DeepDiff on ``sample_data/two_cells/``, two generated
cell types over 1,000 genes) with fixed seeds, and writes
``models/README.md`` with their test metrics.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hmviz import resources
from hmviz.errors import HmvizError

log = logging.getLogger(__name__)

BUNDLED_DIR = resources.bundled_models()  # models/ of a checkout, or the copy inside an installed hmviz
SAMPLE_DIR = resources.sample_data()


@dataclass(frozen=True)
class BundledRecipe:
    """How one bundled model is trained (every field is recorded in its card)."""

    name: str
    epochs: int
    seed: int = 1
    batch_size: int | None = None
    lr: float | None = None
    overrides: dict = field(default_factory=dict)


RECIPES: tuple[BundledRecipe, ...] = (
    BundledRecipe("deepchrome", epochs=40),
    # AttentiveChrome's paper lr (2e-4) is for batch 16; at batch 64 a 5x larger step converges in budget.
    BundledRecipe("attentivechrome", epochs=30, lr=1e-3),
    BundledRecipe("simplechrome", epochs=40),
    BundledRecipe("ranker-deepchrome", epochs=25),
    BundledRecipe("ranker-attentivechrome", epochs=30, lr=1e-3),
    # DeepDiff (raw_d, targets on their scale) on the two generated cells, its defaults (batch 64,
    # lr 1e-3); validation R^2 passed 0.6 by epoch 7 (seed 1), so 12 epochs make a useful demo model.
    BundledRecipe("deepdiff", epochs=12),
)


def list_bundled(models_dir: str | Path = BUNDLED_DIR) -> dict[str, Path]:
    """Bundled model directories by name (those with a model card), in recipe order."""
    models_dir = Path(models_dir)
    found = (
        {p.name: p for p in sorted(models_dir.iterdir()) if (p / "model_card.json").exists()}
        if models_dir.is_dir()
        else {}
    )
    order = [r.name for r in RECIPES]
    return dict(sorted(found.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


def make_bundled_models(
    out_dir: str | Path = BUNDLED_DIR, sample_dir: str | Path = SAMPLE_DIR, only: list[str] | None = None
) -> dict[str, dict]:
    """Train every recipe on the sample data and save it under ``out_dir/<name>``; returns metrics."""
    from hmviz.checkpoints import save_model
    from hmviz.data import read_dataset
    from hmviz.options import TrainOptions
    from hmviz.training import train

    out_dir = Path(out_dir)
    sample = read_dataset(sample_dir)
    two_cells = None
    results: dict[str, dict] = {}
    for recipe in RECIPES:
        if only and recipe.name not in only:
            continue
        data = sample
        if recipe.name == "deepdiff":
            two_cells = two_cells or read_dataset(Path(sample_dir) / "two_cells")
            data = two_cells
        t0 = time.perf_counter()
        result = train(
            data,
            TrainOptions(
                model=recipe.name,
                epochs=recipe.epochs,
                seed=recipe.seed,
                batch_size=recipe.batch_size,
                lr=recipe.lr,
                device="cpu",
                model_overrides=dict(recipe.overrides),
            ),
        )
        bundled = {
            "recipe": {
                "name": recipe.name,
                "epochs": recipe.epochs,
                "seed": recipe.seed,
                "lr": recipe.lr,
                "batch_size": recipe.batch_size,
            },
            "remake": "python -m hmviz.bundled --out models",
        }
        save_model(result.model, {**result.card, "bundled": bundled}, out_dir / recipe.name)
        results[recipe.name] = {**result.metrics, "train_seconds": round(time.perf_counter() - t0, 1)}
        print(f"{recipe.name}: {json.dumps(results[recipe.name])}", file=sys.stderr, flush=True)
    _write_readme(out_dir)
    return results


def _write_readme(out_dir: Path) -> None:
    rows, seconds = [], {}
    from hmviz.card import load_card

    for name, path in list_bundled(out_dir).items():
        card = load_card(path)
        seconds[name] = card.run.seconds or 0.0
        m, main = card.metrics, card.main_metric
        size = (path / "model.safetensors").stat().st_size / 1e6
        value = f"{main} = {m.get(main, float('nan')):.3f}"
        if card.task == "differential":  # R^2 (coefficient of determination) says the scale is right too
            value += f", test_pearson_r = {m.get('test_pearson_r', float('nan')):.3f}"
        rows.append(
            f"| `{name}` | {card.task} | {value} | "
            f"{card.run.best_epoch}/{card.run.epochs_max} | {card.seed} | {size:.1f} MB |"
        )
    slowest = max(seconds, key=lambda name: seconds[name])
    timing = (
        f"{sum(seconds.values()) / 60:.1f} minutes for all {len(seconds)} together when these were made, "
        f"the longest {slowest} ({seconds[slowest]:.0f} s)"
    )
    text = f"""# Bundled models

One trained model of every family for the sample data (`sample_data/`), so that the app works on
first start without training. Each folder holds `model.safetensors` (weights; loading them cannot
execute code) and `model_card.json` (model and config, marks in order, bin size, the fitted input
transform, label rule, split, metrics, seed, versions, training history and a fingerprint of the
training data).

Remake them all with the command below; each card records its model's training time
(`training.seconds`: {timing}):

```bash
python -m hmviz.bundled --out models
```

The same command with the same software on the same kind of machine gives the same weights. The
LSTM models (AttentiveChrome, its ranker, DeepDiff) also depend on how their LSTMs are computed (the
compiled CPU kernel, the eager recurrence where it cannot be built, cuDNN on a GPU): these differ in
float rounding, which takes training down another path, as another seed would.

DeepDiff is trained on `sample_data/two_cells/` (1,000 genes in two generated cell types, see
`sample_data/README.md`). Metrics are on each model's test split.

| model | task | test metric | best epoch / max | seed | weights |
|---|---|---|---|---|---|
{chr(10).join(rows)}
"""
    (out_dir / "README.md").write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hmviz.bundled", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(BUNDLED_DIR), help="where to write the models (default: models/)")
    parser.add_argument("--data", default=str(SAMPLE_DIR), help="the sample data folder")
    parser.add_argument("--only", help="comma-separated model names to remake (default: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from hmviz.runtime import apply_threads, configure_openmp

    configure_openmp()
    try:
        apply_threads()
        make_bundled_models(args.out, args.data, only=args.only.split(",") if args.only else None)
    except HmvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
