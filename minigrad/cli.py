"""The ``minigrad`` command: train a small network on real data in one line, evaluate a
checkpoint, or show how the library was built.

    minigrad                      # = minigrad train: LeNet-5 on the digits (shapes without scikit-learn)
    minigrad train --model resnet8 --dataset cifar10:~/data/cifar --optimizer nesterov --lr 0.05 --augment flip,crop
    minigrad evaluate --checkpoint minigrad-run/best.safetensors
    minigrad info

``train`` writes the best checkpoint (lowest validation loss), the last one (every epoch, for
``--resume``), the history CSV and the learning-curve PNG into ``--out`` and prints the test
accuracy of the best weights last, as ``test accuracy: 0.9812``. A previous run in ``--out`` is
never replaced silently: the new run goes to ``--out``-2 (-3, ...) unless ``--overwrite``.

A user's mistake (a bad option value, a missing, corrupt or hostile dataset or checkpoint) is
one line ``minigrad: error: ...`` on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import itertools
import math
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np

from . import (
    __version__,
    backend_info,
    distributed,
    get_num_threads,
    manual_seed,
    models,
    nn,
    optim,
    set_num_threads,
    thread_info,
)
from .data import CIFAR10, KMNIST, MNIST, DataLoader, Digits, FashionMNIST, Shapes, TensorDataset, standardized_split
from .data import transforms as T
from .io import CorruptFileError
from .nn import functional as F
from .nn import init
from .optim import lr_scheduler
from .tensor import Tensor
from .train import (
    PRECISIONS,
    CSVLogger,
    EarlyStopping,
    ModelCheckpoint,
    PrintEpochs,
    ProgressBar,
    Trainer,
    TrainingDiverged,
    accuracy,
    confusion_matrix,
    load_checkpoint,
    predict,
    predict_tta,
)
from .train import evaluate as evaluate_loader

AUGMENTATIONS = ("flip", "crop", "resized-crop", "affine", "jitter", "noise")


class CommandError(Exception):
    """A problem with the user's request: printed as one line, exit status 2."""


class Interrupted(Exception):
    """Ctrl-C during training: printed with how to resume, exit status 130 (the shell's for SIGINT)."""


# what `train` writes into --out; any of them there means a previous run
RUN_FILES = ("best.safetensors", "last.safetensors", "history.csv", "curves.png")


# ---------------------------------------------------------------- data
def default_dataset() -> str:
    return "digits" if importlib.util.find_spec("sklearn") is not None else "shapes"


def load_data(spec: str, model: str) -> tuple[TensorDataset, TensorDataset]:
    """``spec`` -> (train dataset, test dataset, name). Digits are upscaled to 28x28 for LeNet-5."""

    name, _, path = spec.partition(":")
    readers = {"mnist": MNIST, "fashion-mnist": FashionMNIST, "kmnist": KMNIST, "cifar10": CIFAR10}
    if name == "digits":
        size = 28 if model == "lenet5" else 8
        return Digits(train=True, size=size), Digits(train=False, size=size)
    if name == "shapes":
        count = int(path) if path.isdigit() else 0 if path else 2000
        if count < 1:
            raise CommandError(f"--dataset {spec}: the number of shapes must be a positive integer")
        return Shapes(n=count, train=True), Shapes(n=max(count // 4, 100), train=False)
    if name in readers:
        if not path:
            raise CommandError(f"--dataset {name} needs the directory of its files: --dataset {name}:PATH")
        root = Path(path).expanduser()
        try:
            return readers[name](root, train=True), readers[name](root, train=False)
        except (FileNotFoundError, CorruptFileError) as error:  # both name the file and what to do
            raise CommandError(str(error)) from None
    raise CommandError(
        f"unknown dataset {spec!r}: choose digits, shapes[:N], mnist:PATH, fashion-mnist:PATH, "
        f"kmnist:PATH or cifar10:PATH"
    )


def augmentation(names: str, image_shape) -> object | None:

    chosen = [n.strip() for n in names.split(",") if n.strip() and n.strip() != "none"]
    if chosen == ["auto"]:  # small shifts and turns for digits and shapes; mirror and shifts for photos
        chosen = ["flip", "crop"] if image_shape[0] == 3 else ["affine"]
    unknown = [n for n in chosen if n not in AUGMENTATIONS]
    if unknown:
        raise CommandError(f"unknown augmentation {', '.join(unknown)}: choose from {', '.join(AUGMENTATIONS)}")
    channels, height, width = image_shape
    steps = {
        "flip": T.RandomHorizontalFlip(),
        "crop": T.RandomCrop((height, width), padding=max(1, height // 8)),
        "resized-crop": T.RandomResizedCrop((height, width), scale=(0.6, 1.0)),
        "affine": T.RandomAffine(degrees=8, translate=(0.08, 0.08)),
        "jitter": T.ColorJitter(0.3, 0.3, 0.3 if channels == 3 else 0.0, 0.05 if channels == 3 else 0.0),
        "noise": T.GaussianNoise(0.1),
    }
    return T.Compose([steps[n] for n in chosen]) if chosen else None


def _model_from_config(config: dict):
    return models.create(
        config["model"], tuple(config["image_shape"]), config["num_classes"], config["norm"], config["dropout"]
    )


# ---------------------------------------------------------------- commands
def _loader(arrays, batch_size, shuffle=False, transform=None, workers=0):

    return DataLoader(
        TensorDataset(*arrays), batch_size=batch_size, shuffle=shuffle, transform=transform, num_workers=workers
    )


def _test_accuracy(model, x, y, batch_size: int, tta: bool) -> float:

    # mirror images only for photos: a mirrored digit or shape may be another class
    scores = (
        predict_tta(model, x, flip=x.shape[1] == 3, shift=1, batch_size=batch_size)
        if tta
        else predict(model, x, batch_size=batch_size)
    )
    return accuracy(scores, y)


def _holds_run(directory: Path) -> bool:
    return any((directory / name).exists() for name in RUN_FILES)


def run_directory(text: str, resume: bool, overwrite: bool) -> tuple[Path, str]:
    """Where this run writes, and a note to print if that is not ``--out``: ``out`` itself, unless
    it holds a previous run, which is never replaced silently: then the first ``out-2``,
    ``out-3``... that holds none. With ``resume``, the run in ``out``; with ``overwrite``, ``out``
    emptied of the previous run's files."""
    if not text.strip():
        raise CommandError("--out must name a directory")
    out = Path(text).expanduser()
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out} is a file, not a directory")
    if resume:
        if not (out / "last.safetensors").is_file():
            raise CommandError(f"nothing to resume in {out}: it holds no last.safetensors")
        return out, ""
    if not _holds_run(out):
        return out, ""
    if overwrite:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
        return out, ""
    for n in itertools.count(2):
        fresh = out.with_name(f"{out.name}-{n}")
        if not fresh.exists() or fresh.is_dir() and not _holds_run(fresh):  # (a run that failed early left it empty)
            break
    return fresh, (
        f"{out} holds a previous run: this one goes to {fresh} (--overwrite replaces the previous run, "
        f"--resume continues it)"
    )


# options a resumed run takes from its checkpoint (the rest may be given anew)
RESUMED_OPTIONS = (
    "model",
    "dataset",
    "optimizer",
    "lr",
    "batch_size",
    "init",
    "norm",
    "dropout",
    "weight_decay",
    "augment",
    "schedule",
    "early_stopping",
    "val_fraction",
    "train_size",
    "seed",
    "workers",
    "precision",
)


def resumed_args(args, defaults: dict) -> tuple[argparse.Namespace, int]:
    """The options of the run in ``args.out``, saved in its last checkpoint; ``--epochs`` and
    ``--threads`` may change. Another option given with a different value is an error: the
    result would be neither the old run nor a new one."""
    state = load_checkpoint(Path(args.out) / "last.safetensors")
    saved = state["extra"].get("args")
    if isinstance(saved, dict):
        saved.setdefault("precision", "fp32")  # runs saved before --precision existed
    if not isinstance(saved, dict) or any(name not in saved for name in RESUMED_OPTIONS):
        raise CommandError(f"{args.out}/last.safetensors holds no command-line options to resume with")
    for name in RESUMED_OPTIONS:
        given = getattr(args, name)
        if given != defaults[name] and given != saved[name]:
            raise CommandError(
                f"--resume continues the run with its own options: --{name.replace('_', '-')} "
                f"{given} differs from the run's {saved[name]} (start a new run instead)"
            )
        setattr(args, name, saved[name])
    args.epochs = args.epochs or saved["epochs"]
    return args, int(state["epoch"])


def train(args) -> float:
    """``minigrad train``; under mpirun/srun every rank runs it, data-parallel, and rank 0 alone
    prints and writes files."""
    ranks = distributed.launched_size()
    if ranks == 1:
        return _train(args, ranks)
    distributed.init_process_group()
    if distributed.get_rank() == 0:
        return _train(args, ranks)
    with contextlib.redirect_stdout(io.StringIO()):  # one log: rank 0's
        return _train(args, ranks)


def _train(args, ranks: int) -> float:
    leader = distributed.get_rank() == 0
    # before any work; rank 0 alone checks and prepares the folder, the others wait for it
    out, note = run_directory(args.out, args.resume, args.overwrite) if leader else (Path(args.out), None)
    if ranks > 1:
        distributed.barrier()
    if args.resume:
        args, done = resumed_args(args, vars(parser().parse_args(["train"])))
        print(f"resuming {out} after epoch {done} of {args.epochs}", flush=True)
    args.epochs = args.epochs or DEFAULT_EPOCHS
    if args.threads:
        set_num_threads(args.threads)
    elif ranks > 1:  # the ranks share the machine's cores (one node; on a cluster, set --threads)
        set_num_threads(max(1, (os.cpu_count() or 1) // ranks))
    manual_seed(args.seed)
    started = time.perf_counter()
    dataset = args.dataset or default_dataset()
    train_set, test_set = load_data(dataset, args.model)
    x_all, y_all = (a[: args.train_size] for a in train_set.arrays) if args.train_size else train_set.arrays
    num_classes = len(type(train_set).classes)
    image_shape = tuple(x_all.shape[1:])

    (x_train, y_train), (x_val, y_val), scaling = standardized_split(x_all, y_all, args.val_fraction, args.seed)
    x_test, y_test = scaling(test_set.arrays[0]), test_set.arrays[1]
    if min(len(x_train), len(x_val)) == 0:
        raise CommandError(
            f"{len(x_all)} images split by --val-fraction {args.val_fraction} leave {len(x_train)} "
            f"for training and {len(x_val)} for validation: both need some (use more images)"
        )

    model = init.apply(models.create(args.model, image_shape, num_classes, args.norm, args.dropout), args.init)
    optimizer = optim.create(args.optimizer, model.parameters(), args.lr, weight_decay=args.weight_decay)
    lr = optimizer.param_groups[0]["lr"]
    scheduler = lr_scheduler.create(args.schedule, optimizer, args.epochs)
    out.mkdir(parents=True, exist_ok=True)
    best_path, last_path = out / "best.safetensors", out / "last.safetensors"
    csv_path, png_path = out / "history.csv", out / "curves.png"
    config = {
        "model": args.model,
        "dataset": dataset,
        "image_shape": list(image_shape),
        "num_classes": num_classes,
        "norm": args.norm,
        "dropout": args.dropout,
        "standardize": scaling.state_dict(),
    }
    options = {name: getattr(args, name) for name in (*RESUMED_OPTIONS, "epochs")}
    # best: what evaluate and the test accuracy use; last: every epoch, what --resume continues from
    callbacks = [
        ModelCheckpoint(best_path, monitor="val_loss", save_best_only=True),
        ModelCheckpoint(last_path, save_best_only=False),
        CSVLogger(csv_path),
        PrintEpochs(),
        ProgressBar(),
    ]
    if args.early_stopping:
        callbacks.insert(0, EarlyStopping("val_loss", patience=args.early_stopping, restore_best_weights=True))
    profiler = None
    if getattr(args, "profile", False) and leader:
        from .inspect import ProfileSteps

        profiler = ProfileSteps(out / "trace.json", steps=5, skip=2)
        callbacks.append(profiler)
    watcher = None
    if getattr(args, "watch", None) and leader:
        from .inspect import watch

        watcher = watch(model, every=args.watch)
        callbacks.append(watcher)
    trainer = Trainer(
        model,
        optimizer,
        F.cross_entropy,
        scheduler=scheduler,
        callbacks=callbacks,
        extra={"config": config, "args": options},
        progress=False,
        precision=args.precision,
    )
    if (
        args.resume
    ):  # weights, optimiser, schedule, callbacks, history and random state: the run goes on as if never stopped
        trainer.load_checkpoint(last_path)
    if note:
        print(note)
    print(
        f"training {args.model} on {dataset} ({len(x_train)} train / {len(x_val)} validation / {len(x_test)} test "
        f"images of {'x'.join(map(str, image_shape))}), {args.optimizer} lr {lr:g}, batch {args.batch_size}, "
        f"{get_num_threads()} threads" + (f" x {ranks} ranks" if ranks > 1 else ""),
        flush=True,
    )
    try:
        trainer.fit(
            _loader(
                (x_train, y_train),
                args.batch_size,
                shuffle=True,
                transform=augmentation(args.augment, image_shape),
                workers=args.workers,
            ),
            _loader((x_val, y_val), 512),
            epochs=args.epochs,
        )
    except TrainingDiverged as error:
        raise CommandError(
            f"{error}{' Best checkpoint so far: ' + str(best_path) if best_path.exists() else ''}"
        ) from None
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted after epoch {trainer.epoch}; continue with: minigrad train --resume --out {out}"
        ) from None
    model.load_state_dict(load_checkpoint(best_path)["model"])  # the best epoch's weights
    best = trainer.history.best("val_loss")
    print(f"best epoch {best['epoch']} (validation loss {best['val_loss']:.4f}, accuracy {best['val_accuracy']:.4f})")
    print(f"checkpoint: {best_path}\nhistory: {csv_path}")
    if profiler is not None and profiler.result is not None:
        print(f"profile of training steps 3-7: {out / 'trace.json'}\n{profiler.result.table(limit=12)}")
    if watcher is not None:
        print(f"learning dynamics, one training step in {args.watch}:")
        watcher.report()
        try:
            print(f"activation and gradient histograms: {watcher.plot(out / 'watch.png')}")
        except ImportError as error:
            print(f"activation and gradient histograms: not drawn ({error})")
        watcher.close()
    try:
        if leader:
            trainer.history.plot(png_path)
        print(f"learning curves: {png_path}")
    except ImportError as error:
        print(f"learning curves: not drawn ({error})")
    test_accuracy = _test_accuracy(model, x_test, y_test, 512, args.tta)
    print(f"time: {time.perf_counter() - started:.1f}s")
    print(f"test accuracy: {test_accuracy:.4f}")
    return test_accuracy


def _trained_model(checkpoint) -> tuple[dict, dict, nn.Module]:
    """The checkpoint of a `minigrad train` run, its model config and the model with its weights."""
    try:
        state = load_checkpoint(checkpoint)
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot read checkpoint: {error}") from None
    config = state["extra"].get("config")
    if config is None:
        raise CommandError(f"{checkpoint} was not written by `minigrad train` (no model config inside)")
    try:  # the config is data from a file: any shape of it may be wrong
        model = _model_from_config(config)
        model.load_state_dict(state["model"])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CommandError(
            f"{checkpoint}: its model config or weights are unusable ({type(error).__name__}: {error})"
        ) from None
    return state, config, model


def evaluate(args) -> float:
    state, config, model = _trained_model(args.checkpoint)
    _, test_set = load_data(args.dataset or config["dataset"], config["model"])
    x_test, y_test = test_set.arrays
    if tuple(x_test.shape[1:]) != tuple(config["image_shape"]):
        raise CommandError(
            f"the checkpoint's model takes images of {config['image_shape']}, the dataset has {list(x_test.shape[1:])}"
        )
    x_test = T.Standardize().load_state_dict(config["standardize"])(x_test)
    scores = evaluate_loader(model, _loader((x_test, y_test), args.batch_size), F.cross_entropy)
    print(
        f"{config['model']} from {args.checkpoint} (epoch {state['epoch']}) on {args.dataset or config['dataset']} "
        f"test split: {len(y_test)} images, loss {scores['loss']:.4f}"
    )
    print("confusion matrix (rows: true class, columns: predicted):")
    print(confusion_matrix(predict(model, x_test, args.batch_size), y_test, config["num_classes"]))
    test_accuracy = _test_accuracy(model, x_test, y_test, args.batch_size, args.tta) if args.tta else scores["accuracy"]
    print(f"test accuracy: {test_accuracy:.4f}")
    return test_accuracy


class _Scaled(nn.Module):
    """The training run's input standardisation, y = a x + b, in front of the model, so the
    exported model takes images as the data set stores them."""

    def __init__(self, scaling, model: nn.Module, example: np.ndarray):
        super().__init__()
        zeros, ones = scaling(np.zeros_like(example[:1])), scaling(np.ones_like(example[:1]))
        self.register_buffer("a", Tensor((ones - zeros).astype(np.float32)))
        self.register_buffer("b", Tensor(zeros.astype(np.float32)))
        self.model = model

    def forward(self, x) -> Tensor:
        return self.model(x * self.a + self.b)


def export(args) -> None:
    """``minigrad export``: a trained run's best checkpoint as an ONNX file that takes raw images."""
    from .onnx import export as to_onnx

    _, config, model = _trained_model(args.checkpoint)
    example = np.zeros((1, *config["image_shape"]), np.float32)
    scaling = T.Standardize().load_state_dict(config["standardize"])
    path = to_onnx(_Scaled(scaling, model, example), example, args.out, opset=args.opset)
    shape = "x".join(map(str, config["image_shape"]))
    print(f"{config['model']} ({config['num_classes']} classes) -> {path}: input 'input' (batch, {shape}) images as the "
          f"{config['dataset']} data set stores them (standardisation included), output 'output' logits")  # fmt: skip


def info(args) -> None:
    if distributed.launched_size() > 1:  # under mpirun/srun: rank 0 speaks for every rank
        distributed.init_process_group()
        hosts = [None] * distributed.get_world_size()
        distributed.all_gather_object(hosts, os.uname().nodename)
        if distributed.get_rank() != 0:
            return
        parallel = [
            f"distributed: rank 0 of world size: {distributed.get_world_size()} (hosts: {', '.join(hosts)})",
            f"MPI: {distributed.mpi_library()}",
        ]
    else:
        mpi = "mpi4py installed" if distributed.is_available() else "mpi4py not installed"
        parallel = [f"distributed: one process, world size: 1 ({mpi}; run under mpirun/srun for several)"]
    backend = backend_info()
    threads = thread_info()
    print(f"minigrad {__version__} (numpy {np.__version__}, Python {sys.version.split()[0]})")
    print(f"threads: {threads['threads']} (from {threads['source']})")
    print(f"OpenMP wait policy: {threads['wait_policy']}")
    shrink = "on" if threads["shrink_when_busy"] else "off (MINIGRAD_SHRINK_WHEN_BUSY=0)"
    print(f"teams: sized by the work, shrunk while other processes are busy: {shrink}")
    print("two-thread crossovers (work units): " + ", ".join(f"{k} {v:,}" for k, v in threads["crossover"].items()))
    del backend["num_threads"]
    for key, value in backend.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k}: {v}")
        else:
            print(f"{key}: {value}")
    print("\n".join(parallel))
    extras = {"scikit-learn (digits)": "sklearn", "matplotlib (plots)": "matplotlib", "tqdm (progress)": "tqdm"}
    print(
        "optional: "
        + ", ".join(f"{label} {'yes' if importlib.util.find_spec(m) else 'no'}" for label, m in extras.items())
    )


# ---------------------------------------------------------------- tune: hyper-parameter search
def lab(args) -> None:
    """Lists the experiments, or runs one (or all) and writes figure(s), results.csv and
    summary.md per experiment; prints each verdict."""
    from . import lab as experiments

    if args.name is None:
        width = max(len(name) for name, _ in experiments.describe())
        for name, description in experiments.describe():
            print(f"{name:<{width}}  {description}")
        print("\nminigrad lab NAME [--out DIR] [--quick] [--seed N]   (NAME all: every one)")
        return
    names = [n for n, _ in experiments.describe()] if args.name == "all" else [args.name]
    if args.name != "all" and args.name not in experiments.EXPERIMENTS:
        raise CommandError(f"unknown experiment {args.name!r}: choose one of {', '.join(experiments.ORDER)}, or all")
    for name in names:
        out = Path(args.out or "lab") / name if args.name == "all" or args.out is None else Path(args.out)
        started = time.perf_counter()
        result = experiments.run(name, out=out, quick=args.quick, seed=args.seed)
        print(f"{name}: the claim {result.verdict} ({time.perf_counter() - started:.1f}s) -> {out}")
        for number in result.numbers:
            print(f"  {number}")


def tune(args) -> float:
    """Searches learning rate, optimiser, batch size and dropout for ``--model`` on ``--dataset`` with
    :func:`minigrad.strategies.tune.search`, scored on the validation split; prints the best configuration and,
    last, ``best validation accuracy: 0.9812``."""
    import minigrad as mg

    from .strategies.tune import Choice, Experiment, LogUniform, Uniform, search

    if args.threads:
        mg.set_num_threads(args.threads)
    dataset = args.dataset or default_dataset()
    train_set, _ = load_data(dataset, args.model)
    x_all, y_all = (a[: args.train_size] for a in train_set.arrays) if args.train_size else train_set.arrays
    num_classes, image_shape = len(type(train_set).classes), tuple(x_all.shape[1:])
    train_arrays, val_arrays, _ = standardized_split(x_all, y_all, args.val_fraction, seed=0)
    val_loader = _loader(val_arrays, 512)

    def build(config):
        model = models.create(args.model, image_shape, num_classes, args.norm, config["dropout"])
        optimizer = optim.create(config["optimizer"], model.parameters(), config["lr"])
        return Experiment(
            model,
            optimizer,
            F.cross_entropy,
            _loader(train_arrays, config["batch_size"], shuffle=True),
            val_loader,
            args.epochs,
        )

    space = {
        "lr": LogUniform(1e-4, 1e-1),
        "optimizer": Choice(["adam", "momentum", "rmsprop"]),
        "batch_size": Choice([32, 64, 128]),
        "dropout": Uniform(0.0, 0.5),
    }
    print(
        f"tuning {args.model} on {dataset}: {args.trials} trials of {args.epochs} epochs, "
        f"{len(train_arrays[1])} train / {len(val_arrays[1])} validation images, storage {args.storage or 'in memory'}",
        flush=True,
    )

    def report(study, trial):
        value = "pruned" if trial.value is None else f"{trial.value:.4f}"
        print(
            f"trial {trial.number}: {value}  "
            + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items()),
            flush=True,
        )

    result = search(
        build,
        space,
        n_trials=args.trials,
        storage=args.storage,
        study_name=args.study_name,
        seed=args.seed,
        trial_callbacks=[report],
        study_trials=args.trials if args.storage else None,  # shared: the study's budget, not each worker's
    )
    print(
        "best configuration: "
        + " ".join(
            f"--{k.replace('_', '-')} {v:.4g}" if isinstance(v, float) else f"--{k.replace('_', '-')} {v}"
            for k, v in result.best_config.items()
        )
    )
    print(f"best validation accuracy: {result.best_value:.4f}")
    return result.best_value


# ---------------------------------------------------------------- arguments
def _checked(kind, valid, expected: str):
    """An argparse type: ``kind(text)`` that ``valid`` accepts, or argparse's one-line error
    (``argument --lr: expected a positive number, got -0.01``). NaN and infinities fail every
    ``valid`` below, as no option can use them."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not valid(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    return parse


_positive_int = _checked(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _checked(int, lambda v: v >= 0, "a non-negative integer")
_positive_float = _checked(float, lambda v: math.isfinite(v) and v > 0, "a positive number")
_non_negative_float = _checked(float, lambda v: math.isfinite(v) and v >= 0, "a non-negative number")
_fraction = _checked(float, lambda v: 0 <= v < 1, "a value in [0, 1)")
DEFAULT_EPOCHS = 30


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="minigrad", description="Train and evaluate small networks with minigrad. With no command: train."
    )
    top.add_argument("--version", action="version", version=f"minigrad {__version__}")
    commands = top.add_subparsers(dest="command")
    t = commands.add_parser("train", help="train a model (the default command)")
    t.add_argument("--model", choices=models.MODELS, default="lenet5")
    t.add_argument(
        "--dataset",
        default=None,
        help="digits (default; needs scikit-learn), shapes[:N] (no "
        "dependencies; the default without scikit-learn), mnist:PATH, fashion-mnist:PATH, kmnist:PATH, "
        "cifar10:PATH",
    )
    t.add_argument("--optimizer", choices=optim.OPTIMIZERS, default="adam")
    t.add_argument("--lr", type=_positive_float, default=None, help="learning rate (default: per optimizer, adam 2e-3)")
    t.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        help=f"default {DEFAULT_EPOCHS}; with --resume: the new total (default: the run's)",
    )
    t.add_argument("--batch-size", type=_positive_int, default=64)
    t.add_argument("--init", choices=init.INIT_SCHEMES, default="default")
    t.add_argument(
        "--norm",
        choices=nn.NORMS,
        default=None,
        help="normalisation layers (default: the model's own: batch for resnet8, none otherwise)",
    )
    t.add_argument("--dropout", type=_fraction, default=0.0, help="dropout probability after hidden layers")
    t.add_argument("--weight-decay", type=_non_negative_float, default=0.0)
    t.add_argument(
        "--augment",
        default="auto",
        help=f"comma-separated: {', '.join(AUGMENTATIONS)}, or none, or "
        "auto (default: affine for grey images, flip,crop for colour ones)",
    )
    t.add_argument("--schedule", choices=lr_scheduler.SCHEDULES, default="cosine")
    t.add_argument(
        "--early-stopping",
        type=_non_negative_int,
        default=0,
        metavar="PATIENCE",
        help="stop after PATIENCE epochs without a lower validation loss (0: off)",
    )
    t.add_argument("--val-fraction", type=_fraction, default=0.1)
    t.add_argument("--train-size", type=_positive_int, default=None, help="use only the first N training images")
    t.add_argument(
        "--tta",
        action="store_true",
        help="test-time augmentation: average over shifted copies (and mirror images for colour data)",
    )
    t.add_argument(
        "--profile",
        action="store_true",
        help="profile training steps 3-7: OUT/trace.json (Perfetto, chrome://tracing) and a per-op table",
    )
    t.add_argument(
        "--watch",
        type=_positive_int,
        nargs="?",
        const=50,
        default=None,
        metavar="EVERY",
        help="sample per-layer activations, gradients and update ratios every EVERY steps (default 50); "
        "print the statistics and the alerts (dead ReLUs, saturation, vanishing/exploding gradients, "
        "update ratio) and draw OUT/watch.png",
    )
    t.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="bf16: train under bfloat16 autocast (needs ml_dtypes; float32 master weights)",
    )
    t.add_argument("--threads", type=_positive_int, default=None)
    t.add_argument("--workers", type=_non_negative_int, default=0, help="threads preparing batches")
    t.add_argument("--seed", type=_non_negative_int, default=0)
    t.add_argument(
        "--out",
        default="minigrad-run",
        help="directory for the checkpoints, history and curves; if it "
        "holds a previous run, the new one goes to OUT-2 (-3, ...)",
    )
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint, with its options, exactly as if it had not stopped",
    )
    t.add_argument("--overwrite", action="store_true", help="replace a previous run in --out")
    t.set_defaults(run=train)
    e = commands.add_parser("evaluate", help="evaluate a checkpoint written by `minigrad train`")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--dataset", default=None, help="default: the dataset it was trained on")
    e.add_argument("--batch-size", type=_positive_int, default=512)
    e.add_argument("--tta", action="store_true")
    e.set_defaults(run=evaluate)
    x = commands.add_parser("export", help="write a checkpoint's model as ONNX (pip install 'minigrad[onnx]')")
    x.add_argument("--checkpoint", required=True)
    x.add_argument("--out", required=True, help="the .onnx file to write")
    x.add_argument("--opset", type=_positive_int, default=17)
    x.set_defaults(run=export)
    i = commands.add_parser("info", help="version, instruction set, threads and build flags")
    i.set_defaults(run=info)
    # ---- tune: hyper-parameter search on Optuna
    u = commands.add_parser("tune", help="search hyper-parameters with Optuna (pip install 'minigrad[tune]')")
    u.add_argument("--model", choices=models.MODELS, default="mlp")
    u.add_argument("--dataset", default=None, help="as for train (default: digits, or shapes without scikit-learn)")
    u.add_argument(
        "--trials",
        type=_positive_int,
        default=20,
        help="trials (with --storage: for the whole study, all workers together)",
    )
    u.add_argument("--epochs", type=_positive_int, default=5, help="epochs per trial")
    u.add_argument("--norm", choices=nn.NORMS, default=None)
    u.add_argument("--val-fraction", type=_fraction, default=0.2)
    u.add_argument("--train-size", type=_positive_int, default=None, help="use only the first N training images")
    u.add_argument(
        "--storage",
        default=None,
        help="sqlite:///study.db to share the study between processes, "
        "postgresql://user:pw@host/db between machines (default: in memory)",
    )
    u.add_argument("--study-name", default="minigrad")
    u.add_argument(
        "--seed",
        type=_non_negative_int,
        default=None,
        help="sampler seed (give each process of a shared study its own)",
    )
    u.add_argument("--threads", type=_positive_int, default=None)
    u.set_defaults(run=tune)
    # ---- lab: the lectures' experiments
    lab_help = "run the lectures' experiments on the engine (no NAME: list them)"
    b = commands.add_parser("lab", help=lab_help, description=lab_help)
    b.add_argument("name", nargs="?", default=None, help="an experiment's name, or all")
    b.add_argument("--out", default=None, help="folder for the results (default: lab/NAME)")
    b.add_argument("--quick", action="store_true", help="a smaller version that finishes in seconds")
    b.add_argument("--seed", type=_non_negative_int, default=0)
    b.set_defaults(run=lab)
    return top


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "train")
    args = parser().parse_args(argv)
    if getattr(args, "val_fraction", 0.1) == 0:
        print(
            "minigrad: error: --val-fraction must be positive (the best checkpoint is chosen on validation data)",
            file=sys.stderr,
        )
        return 2
    if getattr(args, "resume", False) and args.overwrite:
        print(
            "minigrad: error: --resume continues the run in --out, --overwrite replaces it: choose one", file=sys.stderr
        )
        return 2
    try:
        args.run(args)
    except Interrupted as error:
        print(f"minigrad: {error}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`minigrad info | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush stays quiet
        return 0
    # the readers raise ValueError (and OSError, UnpicklingError) naming the file for corrupt or
    # hostile data and checkpoints: for the command line that is the user's input, not a bug
    except (CommandError, ImportError, ValueError, OSError, pickle.UnpicklingError) as error:
        print(f"minigrad: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
