"""Knowledge distillation and FitNets hints on the digits.

Teacher: wide and shallow (two convolutions with 32 and 64 channels). Student: deeper and
thinner (four 3x3 convolutions with 8 and 16 channels, ~1/10 of the teacher's parameters),
trained on a small labelled subset four ways:

  scratch     cross-entropy on the labels only
  soft        labels + the teacher's soft targets at temperature T (Hinton et al.)
  hints+soft  FitNets: stage 1 trains the student's first half through a 1x1-conv regressor to
              reproduce the teacher's hint layer (1/2 ||u_h - r(v_g)||^2), stage 2 as "soft"

    python examples/distillation.py [--train-size 200] [--seeds 3] [--smoke]
"""

import argparse

import numpy as np

import minigrad as mg
from minigrad import nn, optim
from minigrad.data import DataLoader, Digits, TensorDataset
from minigrad.nn import functional as F
from minigrad.strategies.distill import Distiller, conv_regressor, hint_training
from minigrad.train import accuracy, fit, predict


def teacher_net():
    return nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),  # hint layer: (32, 14, 14)
        nn.Conv2d(32, 64, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (64, 5, 5)
        nn.Flatten(),
        nn.Linear(1600, 10),
    )


def student_net():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # guided layer: (8, 14, 14)
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (16, 7, 7)
        nn.Flatten(),
        nn.Linear(784, 10),
    )


HINT, GUIDED = 3, 5  # teacher[:3] ends at the hint layer, student[:5] at the guided layer


def count(model):
    return sum(p.numel() for p in model.parameters())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-size", type=int, default=200, help="labelled images the student gets")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--alpha", type=float, default=0.7, help="weight of the soft-target loss")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="a few steps only (for the test suite)")
    args = parser.parse_args(argv)
    teacher_epochs, train_size, epochs, hint_epochs, seeds = (
        (1, 64, 1, 1, 1) if args.smoke else (10, args.train_size, args.epochs, 10, args.seeds)
    )

    train_set, test_set = Digits(train=True, size=28), Digits(train=False, size=28)
    x_all, y_all = train_set.arrays
    x_test, y_test = test_set.arrays
    if args.smoke:
        x_all, y_all = x_all[:256], y_all[:256]

    mg.manual_seed(0)
    teacher = teacher_net()
    fit(
        teacher,
        optim.Adam(teacher.parameters(), lr=1e-3),
        F.cross_entropy,
        DataLoader(TensorDataset(x_all, y_all), 64, shuffle=True),
        epochs=teacher_epochs,
        progress=False,
    )
    teacher_accuracy = accuracy(predict(teacher, x_test), y_test)
    print(
        f"teacher: {count(teacher):,} parameters, trained on {len(y_all)} images, test accuracy {teacher_accuracy:.4f}"
    )
    print(
        f"student: {count(student_net()):,} parameters, {len(student_net())} modules deep; "
        f"trained on {train_size} labelled images"
    )

    results = {"scratch": [], "soft": [], "hints+soft": []}
    for seed in range(seeds):
        chosen = np.random.default_rng(seed).choice(len(y_all), train_size, replace=False)
        x, y = x_all[chosen], y_all[chosen]
        loader = DataLoader(TensorDataset(x, y), 32, shuffle=True)
        for name in results:
            mg.manual_seed(100 + seed)
            student = student_net()
            if name == "hints+soft":  # stage 1: the student's lower half learns the teacher's hint
                regressor = conv_regressor(8, 32, 14, 14)
                hint_optimizer = optim.Adam(list(student[:GUIDED].parameters()) + list(regressor.parameters()), lr=1e-3)
                losses = hint_training(teacher[:HINT], student[:GUIDED], regressor, loader, hint_optimizer, hint_epochs)
                if seed == 0:
                    print(f"hint loss per stage-1 epoch: {losses[0]:.3f} -> {losses[-1]:.3f}")
            if name == "scratch":
                model, loss_fn = student, F.cross_entropy
            else:
                model = Distiller(student, teacher, temperature=args.temperature, alpha=args.alpha)
                loss_fn = model.loss
            fit(model, optim.Adam(student.parameters(), lr=1e-3), loss_fn, loader, epochs=epochs, progress=False)
            results[name].append(accuracy(predict(student, x_test), y_test))

    print(
        f"\nstudent test accuracy on {len(y_test)} images (mean over {seeds} draws of {train_size} images), "
        f"T={args.temperature:g}, alpha={args.alpha:g}:"
    )
    for name, scores in results.items():
        print(f"  {name:<11} {np.mean(scores):.4f}  ({', '.join(f'{s:.3f}' for s in scores)})")
    return {"teacher": teacher_accuracy, **{name: float(np.mean(s)) for name, s in results.items()}}


if __name__ == "__main__":
    main()
