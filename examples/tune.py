"""Hyper-parameter search with Optuna on the digits (8x8, an MLP: fast trials).

Searches the learning rate, hidden width, dropout and batch size on a validation split carved
from the training images, pruning trials that fall behind, then retrains nothing: it reports the
best configuration's validation accuracy and that trial's model's accuracy on the test split.

    python examples/tune.py [--trials 20] [--epochs 10] [--storage sqlite:///study.db] [--smoke]

Several processes (or machines, with a PostgreSQL URL) can run this with the same --storage
and --study-name: they share the study. Give each a different --seed.
"""

import argparse

from minigrad import models, optim
from minigrad.data import DataLoader, Digits, TensorDataset, random_split
from minigrad.nn import functional as F
from minigrad.strategies.tune import Choice, Experiment, IntRange, LogUniform, Uniform, search
from minigrad.train import accuracy, predict


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--storage", default=None, help="default: in this process's memory")
    parser.add_argument("--study-name", default="digits-mlp")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a few steps only (for the test suite)")
    args = parser.parse_args(argv)
    trials, epochs = (2, 1) if args.smoke else (args.trials, args.epochs)

    train_set, test_set = Digits(train=True), Digits(train=False)
    x_all, y_all = train_set.arrays
    x_all = x_all.reshape(len(x_all), -1)
    train_part, val_part = random_split(TensorDataset(x_all, y_all), [0.8, 0.2], seed=0)
    val_loader = DataLoader(val_part, 512)
    trained = {}  # configuration -> model, to test the best one

    def build(config):
        model = models.mlp([64, config["width"], 10], dropout=config["dropout"])
        trained[tuple(sorted(config.items()))] = model
        return Experiment(
            model,
            optim.Adam(model.parameters(), lr=config["lr"]),
            F.cross_entropy,
            DataLoader(train_part, config["batch_size"], shuffle=True),
            val_loader,
            epochs,
        )

    space = {
        "lr": LogUniform(1e-4, 1e-1),
        "width": IntRange(16, 256, log=True),
        "dropout": Uniform(0.0, 0.5),
        "batch_size": Choice([16, 32, 64, 128]),
    }
    result = search(build, space, n_trials=trials, storage=args.storage, study_name=args.study_name, seed=args.seed)

    states = {}
    for trial in result.trials:
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
    print(
        f"{len(result.trials)} trials in study {args.study_name!r} ({', '.join(f'{n} {s.lower()}' for s, n in states.items())})"
    )
    print(
        "best configuration: "
        + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.best_config.items())
    )
    print(f"best validation accuracy: {result.best_value:.4f} (trial {result.study.best_trial.number})")
    best_model = trained.get(tuple(sorted(result.best_config.items())))
    if best_model is not None:  # trained in this process (a shared study's best may come from another)
        x_test, y_test = test_set.arrays
        print(
            f"its test accuracy (weights of its last epoch): "
            f"{accuracy(predict(best_model, x_test.reshape(len(x_test), -1)), y_test):.4f}"
        )
    return result


if __name__ == "__main__":
    main()
