"""``pgviz`` / ``python -m pgviz``: train, eval, probe, bench.

Every command prints one JSON line on stdout when it succeeds (strict JSON: never a
``NaN`` token).  Exit codes, each failure with one line on stderr and no traceback:

* 0   success;
* 1   the run diverged (a loss or weight stopped being finite); the last good
      checkpoint is kept;
* 2   bad input: arguments, data, a checkpoint, an ``--out`` that cannot be written or
      that another run is using (nothing was changed);
* 3   a write failed during training (disk full, folder removed); the previous
      checkpoint is kept;
* 130 Ctrl-C, 143 SIGTERM: training saves a resumable checkpoint and prints the summary.
"""
from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import warnings
from pathlib import Path
from typing import Optional, Sequence

from .train.signals import EXIT_STATUS, Terminated, sigterm_raises  # no torch: set up before torch loads

EXIT_BAD_INPUT = 2

#: Upper bounds of the commands' sizes (more would exhaust memory or run for days).
MAX_BENCH_BATCH = 65536
MAX_PROBE_SAMPLES = 4096
MAX_RLOO_K = 1024
EXIT_DIVERGED = 1
EXIT_WRITE_FAILED = 3
EXIT_INTERRUPTED = EXIT_STATUS[signal.SIGINT]  # 130
EXIT_TERMINATED = EXIT_STATUS[signal.SIGTERM]  # 143


class UsageError(Exception):
    """Bad input: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print the usage too; one line is enough
        raise UsageError(f"{message} (see: {self.prog} --help)")


def _finite_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return v


def _build_parser() -> argparse.ArgumentParser:
    from .models import MODELS
    from .train.config import cli_settings
    from .train.runtime import DEVICES, PRECISIONS

    p = _Parser(prog="pgviz", description="Policy gradient estimation on CIFAR-10: train, evaluate, benchmark.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a classifier; writes OUT/checkpoint.pt and OUT/metrics.jsonl")
    for arg in cli_settings():  # one per TrainConfig field and objective option
        kw = {"dest": arg["name"], "default": None, "help": arg["help"]}
        if isinstance(arg["default"], bool):
            kw["action"] = "store_false" if arg["default"] else "store_true"
        elif arg["choices"] is not None:
            kw["choices"] = arg["choices"]
        elif isinstance(arg["default"], (int, float)):
            kw["type"] = int if isinstance(arg["default"], int) else _finite_float
        if arg["required"]:
            kw["required"] = True
        t.add_argument(arg["flag"], **kw)
    t.add_argument("--probe-epochs", default=None, metavar="E1,E2,...",
                   help="measure gradient noise (pgviz probe) after these epochs; rows go to metrics.jsonl")
    t.add_argument("--resume", action="store_true", help="continue OUT/checkpoint.pt up to --epochs in total")

    e = sub.add_parser("eval", help="accuracy of a checkpoint on a data set (all images of an .npz)")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--data", default=None, help="cifar10, synthetic or PATH.npz (default: $PGVIZ_DATA or cifar10)")
    e.add_argument("--device", choices=DEVICES, default="auto")
    e.add_argument("--data-dir", default=None)
    e.add_argument("--batch-size", type=int, default=1000)
    e.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto (default) evaluates in fp32 on every machine; bf16: autocast")

    q = sub.add_parser("probe", help="gradient noise of the policy-gradient estimators for a checkpoint")
    q.add_argument("--checkpoint", required=True)
    q.add_argument("--data", default=None, help="cifar10, synthetic or PATH.npz: the first images of its test split")
    q.add_argument("--samples", type=int, default=32, help="redraws of the sampled actions (M >= 2)")
    q.add_argument("--batch-size", type=int, default=64, help="images in the fixed batch")
    q.add_argument("--rloo", default="2,4,8", help="K values of the rloo estimators, e.g. 2,4,8")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--device", choices=DEVICES, default="auto")
    q.add_argument("--data-dir", default=None)

    b = sub.add_parser("bench", help="images/second of xent, pg and the article's two-backward pg")
    b.add_argument("--device", choices=DEVICES, default="auto")
    b.add_argument("--batch-size", type=int, default=256)
    b.add_argument("--model", choices=tuple(MODELS), default="fast")
    b.add_argument("--steps", type=int, default=4, help="steps per timed block")
    b.add_argument("--repeats", type=int, default=15, help="timed rounds (medians are reported)")
    b.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="precision of the headline rates (both fp32 and bf16 are always timed, "
                        "giving ratio_bf16_vs_fp32)")
    return p


def _cmd_train(args) -> int:
    from .train import OutputError, TrainConfig, TrainingDiverged, load_checkpoint, train
    from .train.config import cli_settings

    out = Path(args.out)
    ckpt_path = out / "checkpoint.pt"
    given, options = {}, {}  # what was given on the command line (the rest: the config's defaults)
    for arg in cli_settings():
        value = getattr(args, arg["name"])
        if value is not None:
            (options if arg.get("option") else given)[arg["name"]] = \
                arg["normalize"](value) if arg["normalize"] else value
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    if ckpt_path.exists() and not args.resume:
        raise UsageError(f"{ckpt_path} already exists; pass --resume to continue it, or choose another --out")
    if args.resume and ckpt_path.exists():
        config = TrainConfig.resumed(load_checkpoint(ckpt_path)["config"], {**given, "options": options})
    elif given.get("recipe") is not None:  # the recipe's settings, then the options given
        config = TrainConfig.from_recipe(given.pop("recipe"), **given, options=options)
    else:
        config = TrainConfig(**given, options=options)
    config.validate()
    callbacks = []
    if args.probe_epochs:
        from .data import load_dataset
        from .gap import ProbeRecorder, parse_epochs

        try:
            epochs = parse_epochs(args.probe_epochs)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        ds = load_dataset(config.data, data_dir=config.data_dir)
        callbacks.append(ProbeRecorder(epochs, ds.test_images[:64], ds.test_labels[:64], out=out,
                                       samples=16, seed=config.seed))
    try:
        summary = train(config, callbacks, resume=args.resume)
    except TrainingDiverged as exc:
        _error(exc)
        return EXIT_DIVERGED
    except OutputError as exc:
        _error(exc)
        return EXIT_WRITE_FAILED
    print(json.dumps(summary, allow_nan=False), flush=True)
    if summary["status"] != "finished":
        print(f"pgviz: {summary['status']} after {summary['step']} steps; saved {ckpt_path} "
              f"(continue with: pgviz train --out {out} --resume)", file=sys.stderr)
        return EXIT_TERMINATED if summary["status"] == "terminated" else EXIT_INTERRUPTED
    return 0


def _cmd_eval(args) -> int:
    import torch

    from .data import DataError, default_source, load_eval_set
    from .train import check_input_size, eval_precision, evaluate, load_checkpoint, model_from_checkpoint, pick_device

    if args.batch_size < 1:
        raise UsageError(f"batch size must be >= 1, got {args.batch_size}")
    ckpt = load_checkpoint(args.checkpoint)
    device = pick_device(args.device)
    model = model_from_checkpoint(ckpt, device)
    images, labels, _ = load_eval_set(args.data, data_dir=args.data_dir)
    if int(labels.max()) >= ckpt["n_classes"]:
        raise DataError(f"labels go up to {int(labels.max())} but the checkpoint has {ckpt['n_classes']} classes")
    check_input_size(model, images, ckpt["config"]["model"])
    with torch.inference_mode():
        result = evaluate(model, images, labels, batch_size=args.batch_size, device=device,
                          precision=args.precision)
    result.update({"checkpoint": str(args.checkpoint), "data": args.data or default_source(),
                   "objective": ckpt["config"]["objective"], "model": ckpt["config"]["model"],
                   "epochs": ckpt["epoch"], "precision": eval_precision(args.precision)})
    if not all(math.isfinite(v) for v in result.values() if isinstance(v, float)):
        raise DataError("the evaluation gave a non-finite number (the network's outputs are not finite)")
    print(json.dumps(result, allow_nan=False), flush=True)
    return 0


def _cmd_probe(args) -> int:
    from .data import DataError, default_source, load_dataset
    from .gap import probe
    from .train import load_checkpoint, model_from_checkpoint, pick_device

    if args.samples < 2:
        raise UsageError(f"--samples must be >= 2 (a covariance needs two redraws), got {args.samples}")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    try:
        ks = sorted({int(k) for k in args.rloo.split(",") if k.strip()})
    except ValueError:
        raise UsageError(f"--rloo wants whole numbers separated by commas, got {args.rloo!r}") from None
    if any(k < 2 for k in ks):
        raise UsageError(f"--rloo values must be >= 2 (leave-one-out needs another sample), got {args.rloo!r}")
    _check_bounds(("--samples", args.samples, MAX_PROBE_SAMPLES), *(("--rloo", k, MAX_RLOO_K) for k in ks))
    ckpt = load_checkpoint(args.checkpoint)
    device = pick_device(args.device)
    model = model_from_checkpoint({**ckpt, "ema": None}, device)  # the live weights, as trained
    ds = load_dataset(args.data, data_dir=args.data_dir)
    images, labels = ds.test_images[:args.batch_size], ds.test_labels[:args.batch_size]
    if int(labels.max()) >= ckpt["n_classes"]:
        raise DataError(f"labels go up to {int(labels.max())} but the checkpoint has {ckpt['n_classes']} classes")
    result = probe(model, images, labels, samples=args.samples, rloo_ks=ks, seed=args.seed, device=device)
    result.update({"checkpoint": str(args.checkpoint), "data": args.data or default_source(),
                   "objective": ckpt["config"]["objective"], "epoch": ckpt["epoch"]})
    from .gap import _finite

    print(json.dumps(_finite(result)), flush=True)
    return 0


def _cmd_bench(args) -> int:
    from .train.bench import bench

    if args.batch_size < 1 or args.steps < 1 or args.repeats < 1:
        raise UsageError("--batch-size, --steps and --repeats must be >= 1")
    _check_bounds(("--batch-size", args.batch_size, MAX_BENCH_BATCH))
    print(json.dumps(bench(args.device, batch_size=args.batch_size, model=args.model,
                           steps=args.steps, repeats=args.repeats, precision=args.precision)), flush=True)
    return 0


def _check_bounds(*checks) -> None:
    """``(flag, value, bound)``: a value over its bound is a :class:`UsageError`."""
    for flag, value, bound in checks:
        if value > bound:
            raise UsageError(f"{flag} must be at most {bound}, got {value}")


def _error(exc) -> None:
    msg = " ".join(str(exc).split())  # always one line
    print(f"pgviz: error: {msg}", file=sys.stderr)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command (``argv``: the arguments after ``pgviz``); returns the exit code."""
    try:  # Ctrl-C (or SIGTERM) at any moment, even while torch is being imported: one line
        with sigterm_raises():
            return _main(argv)
    except Terminated:
        print("pgviz: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("pgviz: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv) -> int:
    args = None
    try:
        args = _build_parser().parse_args(argv)
    except UsageError as exc:
        _error(exc)
        return EXIT_BAD_INPUT
    from .data import DataError
    from .train import CheckpointError, ConfigError

    try:
        with warnings.catch_warnings():  # a deprecation (e.g. --model shallow): one line, as errors are
            warnings.simplefilter("default", FutureWarning)
            warnings.showwarning = lambda message, *_, **__: print(f"pgviz: warning: {message}", file=sys.stderr)
            return {"train": _cmd_train, "eval": _cmd_eval, "probe": _cmd_probe,
                    "bench": _cmd_bench}[args.command](args)
    except (UsageError, ConfigError, DataError, CheckpointError) as exc:
        _error(exc)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
