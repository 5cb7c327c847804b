"""Curriculum learning on the digits: a reference network scores every training image by its
loss; a fresh LeNet-5 then trains on a pool that starts with the easiest 20% and grows to the
whole set (root pacing; each class
in proportion), against the same network trained on uniformly shuffled data.

    python examples/curriculum.py [--epochs 8] [--seeds 3] [--smoke]
"""

import argparse

import numpy as np

import minigrad as mg
from minigrad import models, optim
from minigrad.data import DataLoader, Digits, TensorDataset
from minigrad.nn import functional as F
from minigrad.strategies.curriculum import CurriculumSampler, difficulty_from_model, root_pacing
from minigrad.train import fit


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--full-at", type=int, default=4, help="epoch at which the pool holds every image")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="a few steps only (for the test suite)")
    args = parser.parse_args(argv)
    train_size, epochs, full_at, seeds = (128, 2, 1, 1) if args.smoke else (None, args.epochs, args.full_at, args.seeds)

    train_set, test_set = Digits(train=True, size=28), Digits(train=False, size=28)
    x, y = (a[:train_size] for a in train_set.arrays)
    test_loader = DataLoader(TensorDataset(*test_set.arrays), 512)

    # difficulty: the loss of a reference model trained briefly on the other half of the data,
    # so it scores images it has not memorised (cross-fitted in two halves)
    difficulty = np.empty(len(y))
    halves = np.array_split(np.random.default_rng(0).permutation(len(y)), 2)
    for scored, used in ((halves[0], halves[1]), (halves[1], halves[0])):
        mg.manual_seed(1)
        reference = models.mlp([28 * 28, 64, 10])
        fit(
            reference,
            optim.Adam(reference.parameters(), lr=1e-3),
            F.cross_entropy,
            DataLoader(TensorDataset(x[used].reshape(len(used), -1), y[used]), 64, shuffle=True),
            epochs=2,
            progress=False,
        )
        difficulty[scored] = difficulty_from_model(reference, x[scored].reshape(len(scored), -1), y[scored])
    print(
        f"difficulty (reference loss): easiest {np.sort(difficulty)[:3].round(3)}, hardest {np.sort(difficulty)[-3:].round(2)}"
    )

    curves = {"uniform": [], "curriculum": []}
    for seed in range(seeds):
        for name in curves:
            mg.manual_seed(10 + seed)
            model = models.lenet5()
            if name == "uniform":
                loader = DataLoader(TensorDataset(x, y), 64, shuffle=True)
            else:
                sampler = CurriculumSampler(difficulty, root_pacing(start=0.2, full_at=full_at), labels=y)
                loader = DataLoader(TensorDataset(x, y), 64, sampler=sampler)
            history = fit(
                model,
                optim.Adam(model.parameters(), lr=1e-3),
                F.cross_entropy,
                loader,
                test_loader,
                epochs=epochs,
                progress=False,
            )
            curves[name].append(history["val_accuracy"])
        if seed == 0 and not args.smoke:
            pool = CurriculumSampler(difficulty, root_pacing(start=0.2, full_at=full_at))
            print("curriculum pool per epoch: " + ", ".join(str(pool.pool_size(e)) for e in range(epochs)))

    print(f"\ntest accuracy per epoch (mean over {seeds} seeds), {len(y)} training images:")
    print("  epoch       " + "".join(f"{e:>8d}" for e in range(1, epochs + 1)))
    for name, runs in curves.items():
        print(f"  {name:<12}" + "".join(f"{v:8.4f}" for v in np.mean(runs, axis=0)))
    return {name: float(np.mean(runs, axis=0)[-1]) for name, runs in curves.items()}


if __name__ == "__main__":
    main()
