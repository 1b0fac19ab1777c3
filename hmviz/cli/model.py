"""CLI verbs ``train`` and ``evaluate`` (thin wrappers over :mod:`hmviz.training`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hmviz.cli.annotation import add_annotation_argument, apply_annotation
from hmviz.cli.registry import verb
from hmviz.errors import HmvizError

if TYPE_CHECKING:
    from hmviz.card import ModelCard


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="PATH",
        help="dataset: a file or folder in any supported format (see README)",
    )
    p.add_argument("--format", default="auto", choices=["auto", "deepchrome", "deepdiff", "long"])
    p.add_argument("--expression", metavar="PATH", help="expression table (gene_id, expression) to join")
    add_annotation_argument(p)


def _split_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--split",
        default="auto",
        choices=["auto", "file", "random", "chromosome"],
        help="auto: the file's split column, else a random split by gene, stratified by label or "
        "expression (default); chromosome: hold out whole chromosomes",
    )
    p.add_argument(
        "--valid-chroms",
        metavar="CHROMS",
        help="chromosome split: validation chromosomes, e.g. chr6,chr7 (default: chosen from --seed so "
        "that they hold about 15%% of the genes; recorded in the model card)",
    )
    p.add_argument(
        "--test-chroms",
        metavar="CHROMS",
        help="chromosome split: test chromosomes, e.g. chr8,chr9 (default: chosen like --valid-chroms)",
    )


def _split_options(args: argparse.Namespace) -> dict:
    """TrainOptions fields for --split, --valid-chroms and --test-chroms."""

    def chroms(text: str | None, flag: str) -> tuple[str, ...] | None:
        if text is None:
            return None
        names = tuple(c.strip() for c in text.split(",") if c.strip())
        if not names:
            raise HmvizError(f"{flag} takes chromosome names separated by commas, e.g. chr8,chr9; got '{text}'.")
        return names

    return {
        "split": args.split,
        "valid_chroms": chroms(args.valid_chroms, "--valid-chroms"),
        "test_chroms": chroms(args.test_chroms, "--test-chroms"),
    }


def _split_line(card: ModelCard) -> str:
    """One line on how the genes were split, with each split's class balance (train's printout)."""
    split = card.split_record
    how = split.kind
    if how == "chromosome":
        how += f" (valid {','.join(split.valid_chroms or ())}; test {','.join(split.test_chroms or ())})"
    elif split.stratified_by:
        how += f" (stratified by {split.stratified_by})"
    parts = []
    for name in ("train", "valid", "test"):
        share = split.positive_share(name)
        parts.append(f"{name} {split.counts[name]}" + (f" ({100 * share:.1f}% positive)" if share is not None else ""))
    what = f"; positive = {split.positive}" if split.class_balance else ""
    return f"split {how}: {', '.join(parts)}{what}"


def _train_args(p: argparse.ArgumentParser) -> None:
    _add_data_args(p)
    p.add_argument("--model", required=True, help="model name (see 'python -m hmviz models')")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for the model and its card")
    p.add_argument("--epochs", type=int, help="maximum epochs (default: the model's)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="learning rate (default: the model's)")
    p.add_argument("--marks", help="comma-separated marks to use, e.g. H3K4me3,H3K36me3 (default: all)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--label",
        default=None,
        metavar="RULE",
        help="median | quantile:Q | threshold:T | file (default: the file's labels, else median)",
    )
    _split_args(p)
    p.add_argument("--cells", help="differential models: CELL_A,CELL_B (target log2((B+1)/(A+1)))")
    p.add_argument(
        "--patience",
        type=int,
        default=10,
        help="stop after this many epochs without a new best epoch (--select-on metric: no higher "
        "validation metric, nor the same at a lower loss; --select-on loss: neither the validation loss nor "
        "the metric improved), but not before the model's min_steps training steps (a warm-up some families "
        "set, e.g. attentivechrome; see 'models'; --set min_steps=N changes it). 0: never stop early; default 10",
    )
    p.add_argument(
        "--select-on",
        default="metric",
        choices=["loss", "metric"],
        help="keep the epoch with the best validation metric (default; AUROC, pairwise accuracy for "
        "rankers, R^2 for deepdiff; ties go to the lower validation loss) or the lowest validation "
        "loss; --patience says when training stops",
    )
    p.add_argument(
        "--pair-sampling",
        default="within-batch",
        choices=["within-batch", "global"],
        help="rankers: draw training pairs among each batch's genes, scoring every gene once per "
        "epoch (default), or from all training genes, scoring both genes of every pair",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="settings",
        help="a model setting (repeatable), e.g. --set dropout=0.5 or, for deepdiff, --set variant=aux; "
        "recorded in the model card. An unknown KEY lists the model's settings",
    )
    p.add_argument("--force", action="store_true", help="replace an existing model in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _progress_printer(quiet: bool):
    if quiet:
        return None
    from tqdm import tqdm

    bars: dict = {}

    def on_progress(ev) -> None:
        key = (ev.stage, ev.epoch)
        bar = bars.get(key)
        if bar is None:
            for old in bars.values():
                old.close()
            bars.clear()
            bar = bars[key] = tqdm(
                total=ev.steps,
                desc=f"{ev.stage} epoch {ev.epoch}/{ev.epochs}",
                file=sys.stderr,
                leave=False,
                dynamic_ncols=True,
            )
        bar.n = ev.step
        bar.set_postfix(loss=f"{ev.train_loss:.4f}" if ev.train_loss is not None else "-", refresh=False)
        bar.refresh()
        if ev.epoch_end:
            bar.close()
            bars.clear()
            print(
                f"{ev.stage} epoch {ev.epoch}/{ev.epochs}: loss {ev.train_loss:.4f}, "
                f"{ev.metric_name or 'valid'} {ev.valid_metric:.4f} ({ev.seconds:.1f} s)",
                file=sys.stderr,
            )

    return on_progress


def _read(args):
    from hmviz.data import read_dataset

    return apply_annotation(
        args,
        read_dataset(args.data if len(args.data) > 1 else args.data[0], format=args.format, expression=args.expression),
    )


def _cells(args: argparse.Namespace) -> tuple[str, str] | None:
    """``--cells A,B`` as a pair of names (None when not given)."""
    if not args.cells:
        return None
    cells = tuple(c.strip() for c in args.cells.split(",") if c.strip())
    if len(cells) != 2:
        raise HmvizError(f"--cells takes two cell names separated by a comma; got '{args.cells}'.")
    return cells


@verb("train", "train a model on a dataset and save it with its model card", _train_args)
def cmd_train(args: argparse.Namespace) -> int:
    from hmviz.atomic import output_lock
    from hmviz.checkpoints import save_model
    from hmviz.models import get_spec, parse_settings
    from hmviz.options import TrainOptions
    from hmviz.training import train

    get_spec(args.model)  # unknown model: clear error before reading data
    settings = parse_settings(args.model, args.settings)
    out = Path(args.out)
    options = TrainOptions(
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        label_rule=args.label,
        **_split_options(args),
        patience=args.patience,
        select_on=args.select_on,
        pair_sampling=args.pair_sampling,
        marks=tuple(m.strip() for m in args.marks.split(",") if m.strip()) if args.marks else None,
        cells=_cells(args),
        model_overrides=settings,
    ).validate()
    # The output is locked for the whole run: a second train/convert to the same --out is refused now,
    # not after both have trained.
    with output_lock(out, f"--out {out}"):
        if out.exists() and not out.is_dir():
            raise HmvizError(
                f"--out {out} is a file; --out names a folder for the model and its card. Choose a folder name."
            )
        if out.exists() and any(out.iterdir()) and not args.force:
            raise HmvizError(f"{out} already holds files; choose a new --out directory or add --force to replace it.")
        dataset = _read(args)
        result = train(dataset, options, progress=_progress_printer(args.quiet))
        save_model(result.model, result.card, out, overwrite=args.force)
    print(_split_line(result.model_card), file=sys.stderr)
    print(f"saved {args.model} to {out}", file=sys.stderr)
    print(json.dumps({"model": args.model, "out": str(out), **result.metrics}))
    return 0


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="DIR", help="a model directory made by 'train'")
    _add_data_args(p)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--baselines",
        action="store_true",
        help="also train logistic (or ridge) regression and boosted trees as the model was trained (its "
        "split, labels, marks and transform) and compare: one more JSON line each, with the model's test "
        "metric minus the baseline's on the same genes and its 95%% paired-bootstrap interval",
    )


@verb(
    "evaluate",
    "evaluate a saved model on a dataset, never on genes it trained or validated on (one JSON line "
    "of metrics; 'evaluated_on' and the gene counts say which genes)",
    _evaluate_args,
)
def cmd_evaluate(args: argparse.Namespace) -> int:
    from hmviz.trained import load

    model = load(args.model, device=args.device)  # a bad model directory fails before the data is read
    dataset = _read(args)
    print(json.dumps(model.evaluate(dataset)), flush=True)
    if args.baselines:
        for result, c in model.against_baselines(dataset):
            print(json.dumps({**result, **({"versus_model": c.as_dict()} if c else {})}), flush=True)
    return 0


def _models_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


@verb("models", "list the model families hmviz can train", _models_args)
def cmd_models(args: argparse.Namespace) -> int:
    from hmviz.models import MODEL_REGISTRY, training_defaults

    if args.json:
        print(
            json.dumps(
                {
                    n: {
                        "task": s.task,
                        "inputs": s.inputs,
                        "description": s.description,
                        "training": training_defaults(n),
                    }
                    for n, s in MODEL_REGISTRY.items()
                }
            )
        )
    else:
        for name, spec in MODEL_REGISTRY.items():
            d = training_defaults(name)
            warm = f", no early stop before {d['min_steps']} steps" if d["min_steps"] else ""
            stage = f" after {d['vae_epochs']} VAE epochs" if "vae_epochs" in d else ""
            print(
                f"{name:24s} {spec.task:12s} {spec.description} Defaults: at most {d['epochs']} epochs{stage}{warm}, "
                f"batch {d['batch_size']}, learning rate {d['lr']:g}."
            )
    return 0


def _baselines_args(p: argparse.ArgumentParser) -> None:
    _add_data_args(p)
    p.add_argument(
        "--compare-with",
        default="deepchrome",
        metavar="MODEL",
        help="the deep model whose task, split, labels and transform the baselines share "
        "(a binary model: classifiers on the labels; a ranker: regressors on log expression; "
        "deepdiff: regressors of the log2 fold change on both cells' features)",
    )
    p.add_argument("--cells", help="deepdiff: CELL_A,CELL_B (target log2((B+1)/(A+1)))")
    p.add_argument("--marks", help="comma-separated marks to use (default: all)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--label", default=None, metavar="RULE", help="median | quantile:Q | threshold:T | file")
    _split_args(p)


@verb(
    "baselines",
    "logistic (or, for regression targets, ridge) regression and boosted trees on the same split (one JSON line each)",
    _baselines_args,
)
def cmd_baselines(args: argparse.Namespace) -> int:
    from hmviz.baselines import train_baseline
    from hmviz.models.baselines import BASELINES
    from hmviz.options import TrainOptions

    dataset = _read(args)
    options = TrainOptions(
        model=args.compare_with,
        seed=args.seed,
        label_rule=args.label,
        **_split_options(args),
        cells=_cells(args),
        marks=tuple(m.strip() for m in args.marks.split(",") if m.strip()) if args.marks else None,
    ).validate()
    for name in BASELINES:
        print(json.dumps(train_baseline(dataset, name, options)), flush=True)
    return 0
