"""Multi-task learning on the digits: one LeNet-5 trunk, two heads (which digit, and whether it
is even or odd), trained on the weighted sum of the two cross-entropies, against a network
trained on the digit task alone. Few labels make the shared trunk matter.

    python examples/multitask.py [--train-size 300] [--epochs 30] [--smoke]
"""

import argparse

import minigrad as mg
from minigrad import models, nn, optim
from minigrad.data import DataLoader, Digits, TensorDataset
from minigrad.nn import functional as F
from minigrad.strategies.multitask import MultiTaskLoss, MultiTaskModel, Task
from minigrad.train import accuracy, fit, predict


def trunk():
    """LeNet-5 without its last layer: 84 shared features."""
    return models.lenet5()[:11]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-size", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--smoke", action="store_true", help="a few steps only (for the test suite)")
    args = parser.parse_args(argv)
    train_size, epochs = (64, 1) if args.smoke else (args.train_size, args.epochs)

    train_set, test_set = Digits(train=True, size=28), Digits(train=False, size=28)
    x, y = (a[:train_size] for a in train_set.arrays)
    x_test, y_test = test_set.arrays

    # single task: digit class only
    mg.manual_seed(0)
    single = nn.Sequential(trunk(), nn.Linear(84, 10))
    fit(
        single,
        optim.Adam(single.parameters(), lr=1e-3),
        F.cross_entropy,
        DataLoader(TensorDataset(x, y), 32, shuffle=True),
        epochs=epochs,
        progress=False,
    )
    results = {"digit only": (accuracy(predict(single, x_test), y_test), None)}

    for label, uncertainty in (
        ("digit + parity, fixed weights 1 and 0.5", False),
        ("digit + parity, uncertainty weighting", True),
    ):
        mg.manual_seed(0)
        model = MultiTaskModel(trunk(), {"digit": nn.Linear(84, 10), "parity": nn.Linear(84, 2)})
        loss = MultiTaskLoss(
            [Task("digit", F.cross_entropy, 1.0), Task("parity", F.cross_entropy, 0.5)], uncertainty=uncertainty
        )
        targets, test_targets = (
            loss.stack_targets(digit=y, parity=y % 2),
            loss.stack_targets(digit=y_test, parity=y_test % 2),
        )
        parameters = list(model.parameters()) + list(loss.parameters())
        history = fit(
            model,
            optim.Adam(parameters, lr=1e-3),
            loss,
            DataLoader(TensorDataset(x, targets), 32, shuffle=True),
            DataLoader(TensorDataset(x_test, test_targets), 512),
            epochs=epochs,
            metrics=loss.metrics(),
            progress=False,
        )
        last = history.rows[-1]
        results[label] = (last["val_digit_accuracy"], last["val_parity_accuracy"])
        print(
            f"{label}: final task weights {', '.join(f'{k} {v:.3f}' for k, v in loss.weights().items())}; "
            f"History columns {', '.join(c for c in history.columns if c.startswith('val_'))}"
        )

    print(f"\n{len(y)} training images, {epochs} epochs; test accuracy on {len(y_test)} images:")
    for label, (digit, parity) in results.items():
        print(f"  {label:<42} digit {digit:.4f}" + (f"  parity {parity:.4f}" if parity is not None else ""))
    return results


if __name__ == "__main__":
    main()
