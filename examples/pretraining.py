"""Greedy layer-wise pre-training on the digits: every training image, without its label,
trains a stack of denoising autoencoders one layer at a time; their encoders then initialise an
MLP that is fine-tuned on only a few labelled images per class, against the same MLP from a
random start.

    python examples/pretraining.py [--labels 3] [--seeds 3] [--smoke]
"""

import argparse

import numpy as np

import minigrad as mg
from minigrad import models, optim
from minigrad.data import Digits
from minigrad.nn import functional as F
from minigrad.strategies import pretrain


def fine_tune(model, x, y, steps: int) -> None:
    optimizer = optim.Adam(model.parameters(), lr=3e-4)  # gently: keep what pre-training found
    for _ in range(steps):
        loss = F.cross_entropy(model(mg.tensor(x)), mg.tensor(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def accuracy(model, x, y) -> float:
    model.eval()
    with mg.no_grad():
        return float((model(mg.tensor(x)).data.argmax(1) == y).mean())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=int, default=3, help="labelled images per class")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="a few steps only (for the test suite)")
    args = parser.parse_args(argv)
    epochs, steps, seeds = (1, 10, 1) if args.smoke else (20, 100, args.seeds)

    (x_train, y_train), (x_test, y_test) = (Digits(train=t).arrays for t in (True, False))
    flat = x_train.reshape(len(x_train), -1)
    mean, std = flat.mean(0), flat.std(0) + 1e-3
    unlabelled = (flat - mean) / std  # every training image; the labels are not used
    x_test = (x_test.reshape(len(x_test), -1) - mean) / std
    rng = np.random.default_rng(0)
    few = np.concatenate([rng.permutation(np.flatnonzero(y_train == c))[: args.labels] for c in range(10)])
    x, y = unlabelled[few], y_train[few]

    scores = {"random start": [], "pre-trained": []}
    for seed in range(seeds):
        for name in scores:
            mg.manual_seed(seed)
            model = models.mlp([64, 256, 256, 10])
            if name == "pre-trained":
                losses = pretrain.layerwise(model, unlabelled, epochs=epochs, noise=0.5)
                print(f"seed {seed}: reconstruction loss per layer {[round(v, 3) for v in losses]}")
            fine_tune(model, x, y, steps)
            scores[name].append(accuracy(model, x_test, y_test))
    for name, values in scores.items():
        print(f"{name}: test accuracy {np.mean(values):.3f} with {args.labels} labels per class")


if __name__ == "__main__":
    main()
