"""Transfer learning on the digits: pre-train LeNet-5 on the digits 0-4, then learn 5-9 from a
handful of labelled images, four ways:

  head-only   the pre-trained layers frozen, only a new 5-way classifier trained
  top layers  the two pre-trained fully connected layers fine-tuned at a 10x smaller learning rate
  all layers  every pre-trained layer fine-tuned at the smaller learning rate, the head at the full one
  scratch     the same network from random weights

    python examples/transfer_learning.py [--labels-per-class 10] [--seeds 3] [--smoke]
"""

import argparse

import numpy as np

import minigrad as mg
from minigrad import models, nn, optim
from minigrad.data import DataLoader, Digits, TensorDataset
from minigrad.nn import functional as F
from minigrad.strategies.transfer import freeze, param_groups, replace_head, summary
from minigrad.train import accuracy, fit, predict


def classes(dataset, digits):
    x, y = dataset.arrays
    keep = np.isin(y, digits)
    return x[keep], y[keep] - min(digits)  # labels 0..4 for either half


def few_labels(x, y, per_class, rng):
    chosen = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in np.unique(y)])
    return x[chosen], y[chosen]


def train(model, parameters, x, y, epochs, batch_size):
    optimizer = optim.Adam(parameters, lr=1e-3)
    fit(
        model,
        optimizer,
        F.cross_entropy,
        DataLoader(TensorDataset(x, y), batch_size, shuffle=True),
        epochs=epochs,
        progress=False,
    )
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels-per-class", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="a few steps only (for the test suite)")
    args = parser.parse_args(argv)
    pretrain_epochs, epochs, seeds = (1, 2, 1) if args.smoke else (8, 60, args.seeds)

    train_set, test_set = Digits(train=True, size=28), Digits(train=False, size=28)
    x_source, y_source = classes(train_set, [0, 1, 2, 3, 4])
    x_target, y_target = classes(train_set, [5, 6, 7, 8, 9])
    x_test, y_test = classes(test_set, [5, 6, 7, 8, 9])

    mg.manual_seed(0)
    model = models.lenet5(num_classes=5)
    pretrained = train(model, model.parameters(), x_source, y_source, pretrain_epochs, 64)
    x_source_test, y_source_test = classes(test_set, [0, 1, 2, 3, 4])
    print(
        f"pre-trained on 0-4 ({len(y_source)} images): test accuracy on 0-4 "
        f"{accuracy(predict(pretrained, x_source_test), y_source_test):.4f}"
    )
    weights = {k: np.array(v.data) for k, v in pretrained.state_dict().items()}

    def pretrained_with_new_head():
        model = models.lenet5(num_classes=5)
        model.load_state_dict(weights)
        replace_head(model, nn.Linear(84, 5))
        return model

    results = {name: [] for name in ("head-only", "top layers", "all layers", "scratch")}
    for seed in range(seeds):
        x_few, y_few = few_labels(x_target, y_target, args.labels_per_class, np.random.default_rng(seed))
        batch = min(25, len(y_few))
        for name in results:
            mg.manual_seed(100 + seed)
            if name == "scratch":
                model = models.lenet5(num_classes=5)
                parameters = model.parameters()
            else:
                model = pretrained_with_new_head()  # model[11] is the new head, model[:11] pre-trained
                if name == "head-only":
                    freeze(model[:11])
                    slower = {}
                elif name == "top layers":  # the convolutions stay as pre-trained
                    freeze(model[:7])
                    slower = {model[7:11]: 1e-4}
                else:
                    slower = {model[:11]: 1e-4}
                parameters = param_groups(model, slower, lr=1e-3)
            if seed == 0:
                print(f"  {name:<11} {summary(model)}")
            train(model, parameters, x_few, y_few, epochs, batch)
            results[name].append(accuracy(predict(model, x_test), y_test))

    print(
        f"\n5-9 with {args.labels_per_class} labels per class, test accuracy on {len(y_test)} images "
        f"(mean over {seeds} label draws):"
    )
    for name, scores in results.items():
        print(f"  {name:<11} {np.mean(scores):.4f}  ({', '.join(f'{s:.3f}' for s in scores)})")
    return {name: float(np.mean(scores)) for name, scores in results.items()}


if __name__ == "__main__":
    main()
