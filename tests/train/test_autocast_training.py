"""Autocast does not cost accuracy: ResNet-8 trained on the digits under
``autocast("cpu", dtype=bfloat16)`` (every convolution and the classifier on the bfloat16
kernels, the batch norms and the loss in float32) ends at most half a point below the float32
run from the same seed. (LeNet-5's run through ``minigrad train --precision bf16`` is in
tests/test_autocast.py.)"""

import pytest

import minigrad as mg
from minigrad import _C, models, optim
from minigrad.data import DataLoader, Digits, TensorDataset
from minigrad.data.transforms import Standardize
from minigrad.nn import functional as F
from minigrad.train import Trainer, evaluate

pytest.importorskip("ml_dtypes")
pytest.importorskip("sklearn", reason="the digits dataset comes with scikit-learn (pip install 'minigrad[datasets]')")


def train_resnet8(precision):
    mg.manual_seed(0)
    train, test = Digits(size=16), Digits(train=False, size=16)
    scaling = Standardize().fit(train.arrays[0])
    loader = DataLoader(TensorDataset(scaling(train.arrays[0]), train.arrays[1]), batch_size=64, shuffle=True)
    model = models.resnet8(in_channels=1)
    adam = optim.Adam(model.parameters(), lr=3e-3)
    # Annealed to zero: the last epochs settle, so the comparison is not one noisy step's luck.
    cosine = optim.lr_scheduler.CosineAnnealingLR(adam, T_max=6)
    Trainer(model, adam, F.cross_entropy, scheduler=cosine, progress=False, precision=precision).fit(loader, epochs=6)
    test_loader = DataLoader(TensorDataset(scaling(test.arrays[0]), test.arrays[1]), batch_size=512)
    return evaluate(model, test_loader, F.cross_entropy)["accuracy"]


def test_resnet8_under_autocast_learns_the_digits_as_well_as_in_float32():
    before = _C.conv2d_calls()["forward"].get("gemm", 0)
    bf16 = train_resnet8("bf16")
    if mg.amp.BF16_KERNEL != "float32":  # the bfloat16 convolutions ran (on the GEMM)
        assert _C.conv2d_calls()["forward"].get("gemm", 0) > before
    # (without bfloat16 arithmetic they run on the float32 kernels, on bfloat16-rounded operands)
    fp32 = train_resnet8("fp32")
    assert fp32 >= 0.97, fp32
    # bfloat16 costs at most half a point; above the float32 run is no cost (from one seed the
    # two runs' orders of summation differ, and the float32 run is the noisier on some CPUs)
    assert bf16 >= fp32 - 0.005, (fp32, bf16)
