"""GEMM workloads: square sgemm, and the products LeNet-5 (batch 64) and ResNet-8 (batch 128)
training runs, each layer's forward and both backward products.

A convolution lowered by im2col over the whole batch is one product: with P = N*Hout*Wout and
CKK = Cin*kh*kw, forward Y = W @ cols (Cout x P x CKK), backward-data dcols = W^T @ dY
(CKK x P x Cout, A transposed) and backward-weight dW = dY @ cols^T (Cout x CKK x P, B
transposed). A Linear layer with W stored (out, in): y = x @ W^T (B transposed),
dx = dy @ W, dW = dy^T @ x (A transposed). All sides get preallocated outputs, so the times
are the product plus the call from Python.
"""

from __future__ import annotations

import numpy as np

from bench.common import Workload

SQUARE = [64, 128, 256, 512, 1024, 2048]


def _conv(name, n, cin, cout, k, hout, wout):
    p, ckk = n * hout * wout, cin * k * k
    return [
        (f"{name}.fwd", cout, p, ckk, False, False),
        (f"{name}.bwd_data", ckk, p, cout, True, False),
        (f"{name}.bwd_weight", cout, ckk, p, False, True),
    ]


def _linear(name, n, fin, fout):
    return [
        (f"{name}.fwd", n, fout, fin, False, True),
        (f"{name}.bwd_data", n, fin, fout, False, False),
        (f"{name}.bwd_weight", fout, fin, n, True, False),
    ]


def model_shapes():
    """(name, m, n, k, trans_a, trans_b) for every distinct product of the two models."""
    lenet = (
        _conv("lenet.conv1", 64, 1, 6, 5, 28, 28)
        + _conv("lenet.conv2", 64, 6, 16, 5, 10, 10)
        + _linear("lenet.fc1", 64, 400, 120)
        + _linear("lenet.fc2", 64, 120, 84)
        + _linear("lenet.fc3", 64, 84, 10)
    )
    resnet = (
        _conv("resnet8.stem", 128, 3, 16, 3, 32, 32)
        + _conv("resnet8.stage1.conv", 128, 16, 16, 3, 32, 32)  # both convs of block 1
        + _conv("resnet8.stage2.conv1", 128, 16, 32, 3, 16, 16)
        + _conv("resnet8.stage2.conv2", 128, 32, 32, 3, 16, 16)
        + _conv("resnet8.stage2.shortcut", 128, 16, 32, 1, 16, 16)
        + _conv("resnet8.stage3.conv1", 128, 32, 64, 3, 8, 8)
        + _conv("resnet8.stage3.conv2", 128, 64, 64, 3, 8, 8)
        + _conv("resnet8.stage3.shortcut", 128, 32, 64, 1, 8, 8)
        + _linear("resnet8.fc", 128, 64, 10)
    )
    return lenet + resnet


def _operands(m, n, k, ta, tb, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
    return a, b


def _minigrad(m, n, k, ta, tb):
    def setup():
        from minigrad import _C

        a, b = _operands(m, n, k, ta, tb)
        a3, b3, out = a[None], b[None], np.empty((1, m, n), np.float32)
        return lambda: _C.gemm(a3, b3, out, ta, tb)

    return setup


def _torch(m, n, k, ta, tb):
    def setup():
        import torch

        a, b = (torch.from_numpy(x) for x in _operands(m, n, k, ta, tb))
        a, b = (a.t() if ta else a), (b.t() if tb else b)  # views: BLAS reads them transposed
        out = torch.empty((m, n))
        return lambda: torch.mm(a, b, out=out)

    return setup


def _numpy(m, n, k, ta, tb):
    def setup():
        a, b = _operands(m, n, k, ta, tb)
        a, b = (a.T if ta else a), (b.T if tb else b)
        out = np.empty((m, n), np.float32)
        return lambda: np.matmul(a, b, out=out)

    return setup


def _workload(name, group, m, n, k, ta, tb):
    args = (m, n, k, ta, tb)
    label = f"{name} {m}x{n}x{k}" + (" tA" if ta else "") + (" tB" if tb else "")
    return Workload(label, group, _minigrad(*args), _torch(*args), flop=2.0 * m * n * k, setup_numpy=_numpy(*args))


# bfloat16 products (autocast's GEMM): bfloat16 operands, float32 accumulation; PyTorch's
# bfloat16 matmul writes bfloat16, ours float32 (autocast rounds it afterwards).
BF16_SQUARE = [256, 512, 1024, 2048]


def _bf16_operands(n):
    import ml_dtypes

    a, b = _operands(n, n, n, False, False)
    return a.astype(ml_dtypes.bfloat16), b.astype(ml_dtypes.bfloat16)


def _minigrad_bf16(n):
    def setup():
        from minigrad import _C

        a, b = (x.view(np.uint16)[None] for x in _bf16_operands(n))
        out = np.empty((1, n, n), np.float32)
        return lambda: _C.gemm_bf16(a, b, out)

    return setup


def _torch_bf16(n):
    def setup():
        import torch

        a, b = (torch.from_numpy(x.view(np.int16)).view(torch.bfloat16) for x in _bf16_operands(n))
        out = torch.empty((n, n), dtype=torch.bfloat16)
        return lambda: torch.mm(a, b, out=out)

    return setup


def workloads():
    found = [_workload(f"sgemm{n}", "gemm.square", n, n, n, False, False) for n in SQUARE]
    found += [
        Workload(f"bf16gemm{n} {n}x{n}x{n}", "gemm.bf16", _minigrad_bf16(n), _torch_bf16(n), flop=2.0 * n**3)
        for n in BF16_SQUARE
    ]
    found += [_workload(name, "gemm." + name.split(".")[0], *shape) for name, *shape in model_shapes()]
    return found
