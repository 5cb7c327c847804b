"""``python -m minigrad.demo``: trains a three-layer MLP on a synthetic two-spiral problem with
plain gradient descent on the tape, printing the loss as it falls."""

from __future__ import annotations

import numpy as np

import minigrad as mg
from minigrad.nn import functional as F


def spirals(n_per_class: int, rng) -> tuple[np.ndarray, np.ndarray]:
    t = rng.uniform(0.25, 3.0, (2, n_per_class)) * np.pi
    arms = [np.stack([t[k] * np.cos(t[k] + k * np.pi), t[k] * np.sin(t[k] + k * np.pi)], 1) for k in (0, 1)]
    x = np.concatenate(arms) / 10 + rng.normal(0, 0.02, (2 * n_per_class, 2))
    return x.astype(np.float32), np.repeat([0, 1], n_per_class)


def main(steps: int = 2000, lr: float = 0.2) -> float:
    mg.manual_seed(0)
    x_np, y_np = spirals(200, mg.random.generator())
    x, y = mg.tensor(x_np), mg.tensor(y_np)
    sizes = [2, 64, 64, 2]  # He-initialised ReLU layers
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        params += [
            (mg.randn(fan_in, fan_out) * np.sqrt(2 / fan_in)).detach().requires_grad_(),
            mg.zeros(fan_out, requires_grad=True),
        ]
    w1, b1, w2, b2, w3, b3 = params
    for step in range(steps + 1):
        logits = ((x @ w1 + b1).relu() @ w2 + b2).relu() @ w3 + b3
        loss = F.cross_entropy(logits, y)
        for p in params:
            p.grad = None
        loss.backward()
        with mg.no_grad():
            for p in params:
                p -= lr * p.grad
        if step % 250 == 0:
            accuracy = (logits.argmax(axis=1).numpy() == y_np).mean()
            print(f"step {step:4d}  loss {loss.item():.4f}  accuracy {accuracy:.3f}")
    return loss.item()


if __name__ == "__main__":
    main()
