"""Adversarial examples and adversarial training on the digits (pixels in [0, 1]).

Trains LeNet-5 normally, measures its accuracy on clean test images and on FGSM images
x + eps * sign(grad_x loss) for a few eps; then trains a fresh LeNet-5 on batches holding each
clean image and its FGSM twin (made with the current weights), and measures again.

    python examples/adversarial.py [--epochs 10] [--eps 0.1] [--smoke]
"""

import argparse

import numpy as np

import minigrad as mg
from minigrad import models, optim
from minigrad.data import DataLoader, Digits, TensorDataset
from minigrad.nn import functional as F
from minigrad.strategies.adversarial import AdversarialBatches, fgsm
from minigrad.train import accuracy, fit, predict


def robustness(model, x, y, epsilons):
    """Accuracy on the clean images and on FGSM images at each eps (attacking the model itself)."""
    model.eval()
    scores = {0.0: accuracy(predict(model, x), y)}
    for eps in epsilons:
        adversarial = np.concatenate(
            [fgsm(model, x[i : i + 256], y[i : i + 256], eps, clip=(0.0, 1.0)).data for i in range(0, len(y), 256)]
        )
        scores[eps] = accuracy(predict(model, adversarial), y)
    return scores


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--eps", type=float, default=0.1, help="FGSM step used in adversarial training")
    parser.add_argument("--smoke", action="store_true", help="a few steps only (for the test suite)")
    args = parser.parse_args(argv)
    train_size, epochs = (128, 1) if args.smoke else (None, args.epochs)
    epsilons = (0.05, 0.1, 0.2)

    train_set, test_set = Digits(train=True, size=28), Digits(train=False, size=28)
    x, y = (a[:train_size] for a in train_set.arrays)
    x_test, y_test = test_set.arrays
    loader = DataLoader(TensorDataset(x, y), 64, shuffle=True)

    mg.manual_seed(0)
    standard = models.lenet5()
    fit(standard, optim.Adam(standard.parameters(), lr=1e-3), F.cross_entropy, loader, epochs=epochs, progress=False)
    before = robustness(standard, x_test, y_test, epsilons)

    mg.manual_seed(0)
    robust = models.lenet5()
    fit(
        robust,
        optim.Adam(robust.parameters(), lr=1e-3),
        F.cross_entropy,
        AdversarialBatches(loader, robust, eps=args.eps, clip=(0.0, 1.0)),
        epochs=epochs,
        progress=False,
    )
    after = robustness(robust, x_test, y_test, epsilons)

    print(
        f"test accuracy on {len(y_test)} images, {len(y)} training images, {epochs} epochs "
        f"(adversarial training with eps {args.eps:g}, half of each batch FGSM):"
    )
    print("  eps                   " + "".join(f"{'clean' if e == 0 else e:>8}" for e in before))
    print("  standard training     " + "".join(f"{v:8.4f}" for v in before.values()))
    print("  adversarial training  " + "".join(f"{v:8.4f}" for v in after.values()))
    return {"before": before, "after": after}


if __name__ == "__main__":
    main()
