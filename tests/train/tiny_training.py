"""A tiny model and optimiser made of raw minigrad tensors, so the training loop is tested on
its own; the real layers and optimisers meet it in test_train_models.py."""

import math

import numpy as np

import minigrad as mg


class TinyNet:
    """x -> relu(x W1 + b1) -> dropout(p) -> W2 + b2, with the module-like methods fit() uses."""

    def __init__(self, n_in, n_hidden, n_out, p=0.25):
        rng = mg.random.generator()
        self.params = {
            "w1": mg.Tensor(
                rng.standard_normal((n_in, n_hidden), dtype=np.float32) * math.sqrt(2 / n_in), requires_grad=True
            ),
            "b1": mg.zeros(n_hidden, requires_grad=True),
            "w2": mg.Tensor(
                rng.standard_normal((n_hidden, n_out), dtype=np.float32) * math.sqrt(1 / n_hidden), requires_grad=True
            ),
            "b2": mg.zeros(n_out, requires_grad=True),
        }
        self.p, self.training = p, True

    def __call__(self, x):
        h = (x.reshape(len(x), -1) @ self.params["w1"] + self.params["b1"]).relu()
        if self.training and self.p:
            keep = mg.random.generator().random(h.shape) >= self.p
            h = h * mg.Tensor((keep / (1 - self.p)).astype(np.float32))
        return h @ self.params["w2"] + self.params["b2"]

    def parameters(self):
        return list(self.params.values())

    def train(self, mode=True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def state_dict(self):
        return {k: mg.Tensor(v.data.copy()) for k, v in self.params.items()}

    def load_state_dict(self, state):
        with mg.no_grad():
            for k, v in state.items():
                self.params[k].copy_(np.asarray(getattr(v, "data", v)))


class MomentumSGD:
    """v <- m v + g, p <- p - lr v, with a torch-like param_groups/state_dict."""

    def __init__(self, params, lr, momentum=0.9):
        self.params = list(params)
        self.param_groups = [{"lr": lr, "momentum": momentum, "params": list(range(len(self.params)))}]
        self.state = {}

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        group = self.param_groups[0]
        with mg.no_grad():
            for i, p in enumerate(self.params):
                v = self.state.setdefault(i, {"momentum_buffer": np.zeros_like(p.data)})["momentum_buffer"]
                v *= group["momentum"]
                v += p.grad.data
                p -= group["lr"] * v

    def state_dict(self):
        return {
            "state": {i: {"momentum_buffer": s["momentum_buffer"].copy()} for i, s in self.state.items()},
            "param_groups": [dict(g) for g in self.param_groups],
        }

    def load_state_dict(self, state):
        self.param_groups = [dict(g) for g in state["param_groups"]]
        self.state = {
            int(i): {"momentum_buffer": np.array(s["momentum_buffer"], dtype=np.float32)}
            for i, s in state["state"].items()
        }


class HalvingSchedule:
    def __init__(self, optimizer):
        self.optimizer, self.last_epoch = optimizer, 0

    def step(self):
        self.last_epoch += 1
        self.optimizer.param_groups[0]["lr"] /= 2

    def state_dict(self):
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state):
        self.last_epoch = state["last_epoch"]


def blobs(n, seed):
    """Two noisy Gaussian blobs per class in 6-D, 3 classes: learnable, not trivially."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = np.random.default_rng(100).normal(0, 1.5, (3, 6))
    return (centres[y] + rng.normal(0, 1.0, (n, 6))).astype(np.float32), y
