"""Knowledge distillation: a small *student* learns from a trained *teacher*.

**Soft targets** (Hinton, Vinyals and Dean, 2015). The teacher's class probabilities at a
temperature T, ``p_T = softmax(z_teacher / T)``, say which wrong classes look alike (a 3 that
resembles an 8); a hard label says nothing of that. The student matches them:

    L_soft = T^2 * KL(p_T || softmax(z_student / T))

(T^2 keeps the gradient's size independent of T), usually mixed with the ordinary loss:
``L = alpha * L_soft + (1 - alpha) * CE(z_student, y)``.

**FitNets hints** (Romero et al., 2015). A deeper, thinner student is hard to train from the
output alone, so its middle is guided too. Stage 1 trains the student's layers up to its
*guided* layer, through a small *regressor* r that maps the guided layer's output v_g to the
shape of the teacher's *hint* layer output u_h, on the hint loss

    L_hint = 1/2 || u_h - r(v_g) ||^2      (summed over features, averaged over the batch).

Only the student's lower layers and the regressor change in stage 1. Stage 2 trains the whole
student on the task loss plus soft targets (:class:`Distiller`), and the regressor is dropped.

    hint_training(teacher[:4], student[:6], regressor, loader, optimizer, epochs=3)   # stage 1
    distiller = Distiller(student, teacher, temperature=4.0, alpha=0.7)                # stage 2
    fit(distiller, optim.Adam(student.parameters()), distiller.loss, loader, val_loader, epochs=10)
"""

from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..dtypes import array_of
from ..nn import functional as F
from ..tensor import Tensor
from ..train.evaluation import evaluation_mode


def soft_target_loss(student_logits, teacher_logits, temperature: float = 4.0) -> Tensor:
    """T^2 * mean_n KL(softmax(t_n / T) || softmax(s_n / T)), the teacher's logits held fixed.

    KL(p || q) = sum_c p_c (log p_c - log q_c); it is zero exactly when the student's softened
    distribution equals the teacher's. Its gradient with respect to the student's logits is
    T (q - p) per example, divided by the batch size."""
    if temperature <= 0:
        raise ValueError(f"soft_target_loss: temperature must be positive, got {temperature}")
    if tuple(student_logits.shape) != tuple(teacher_logits.shape):
        raise ValueError(
            f"soft_target_loss: student logits {tuple(student_logits.shape)} and teacher logits "
            f"{tuple(teacher_logits.shape)} differ in shape"
        )
    teacher = np.asarray(array_of(teacher_logits), dtype=student_logits.dtype) / temperature
    teacher_log_p = teacher - teacher.max(axis=1, keepdims=True)
    teacher_log_p -= np.log(np.exp(teacher_log_p).sum(axis=1, keepdims=True))
    p = np.exp(teacher_log_p)
    log_q = F.log_softmax(student_logits / temperature, dim=1)
    kl = (Tensor(p) * (Tensor(teacher_log_p) - log_q)).sum(axis=1).mean()
    return kl * (temperature**2)


def distillation_loss(student_logits, teacher_logits, target, temperature: float = 4.0, alpha: float = 0.5) -> Tensor:
    """alpha * soft_target_loss + (1 - alpha) * cross_entropy(student_logits, target)."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"distillation_loss: alpha must be in [0, 1], got {alpha}")
    soft = soft_target_loss(student_logits, teacher_logits, temperature)
    if alpha == 1:
        return soft
    return soft * alpha + F.cross_entropy(student_logits, target) * (1 - alpha)


class Distiller(nn.Module):
    """Trains ``student`` against a fixed ``teacher`` with the ordinary training loop.

    ``distiller(x)`` returns the student's logits (what metrics and validation see) and keeps
    the teacher's logits for the same batch (no tape, teacher in eval mode);
    ``distiller.loss(output, y)`` is :func:`distillation_loss` on the pair. Only the student is a
    sub-module: ``state_dict()`` and checkpoints hold the student alone, and the optimiser
    should get ``student.parameters()``."""

    def __init__(self, student: nn.Module, teacher: nn.Module, temperature: float = 4.0, alpha: float = 0.5):
        super().__init__()
        if temperature <= 0 or not 0 <= alpha <= 1:
            raise ValueError(f"Distiller: need temperature > 0 and alpha in [0, 1], got {temperature} and {alpha}")
        self.student = student
        object.__setattr__(self, "teacher", teacher)  # not registered: never trained, never saved here
        self.temperature, self.alpha = float(temperature), float(alpha)
        self._teacher_logits = None

    def forward(self, x) -> Tensor:
        with evaluation_mode(self.teacher):
            self._teacher_logits = self.teacher(x).data
        return self.student(x)

    def loss(self, output, target) -> Tensor:
        if self._teacher_logits is None or self._teacher_logits.shape != tuple(output.shape):
            raise RuntimeError(
                "Distiller.loss: call the distiller on the batch first (its forward computes "
                "the teacher's logits for that batch)"
            )
        return distillation_loss(output, self._teacher_logits, target, self.temperature, self.alpha)


# ----------------------------------------------------------------------- FitNets hints
def hint_loss(hint, guided) -> Tensor:
    """1/2 || u_h - r(v_g) ||^2 per example, averaged over the batch: ``hint`` is the teacher's
    hint-layer output u_h (held fixed), ``guided`` the regressor's output r(v_g), same shape."""
    hint = np.asarray(array_of(hint), dtype=guided.dtype)
    if hint.shape != tuple(guided.shape):
        raise ValueError(
            f"hint_loss: the teacher's hint {hint.shape} and the regressed student output "
            f"{tuple(guided.shape)} must have the same shape; adjust the regressor"
        )
    difference = guided - Tensor(hint)
    per_example = (difference * difference).reshape(guided.shape[0], -1).sum(axis=1)
    return per_example.mean() * 0.5


def conv_regressor(student_channels: int, teacher_channels: int, student_size: int, teacher_size: int) -> nn.Module:
    """The FitNets convolutional regressor: one convolution, no padding, whose kernel size
    ``student_size - teacher_size + 1`` maps a (C_s, H_s, H_s) guided map to the teacher's
    (C_t, H_t, H_t) hint map with few parameters (a fully connected one would need
    C_s H_s^2 C_t H_t^2)."""
    kernel = student_size - teacher_size + 1
    if kernel < 1:
        raise ValueError(
            f"conv_regressor: the guided map ({student_size}x{student_size}) must be at least as large "
            f"as the hint map ({teacher_size}x{teacher_size})"
        )
    return nn.Conv2d(student_channels, teacher_channels, kernel)


def hint_training(
    teacher_lower: nn.Module,
    student_lower: nn.Module,
    regressor: nn.Module,
    loader,
    optimizer,
    epochs: int = 1,
    on_epoch=None,
) -> list[float]:
    """FitNets stage 1: trains ``student_lower`` (the student up to its guided layer) and the
    ``regressor`` on :func:`hint_loss` against ``teacher_lower`` (the teacher up to its hint layer,
    evaluated in eval mode without tape). ``optimizer`` must hold the parameters of
    ``student_lower`` and ``regressor``, nothing else. Returns the mean hint loss per epoch;
    ``on_epoch(epoch, loss)`` is called after each."""
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"hint_training: epochs must be a positive integer, got {epochs!r}")
    allowed = {id(p) for p in (*student_lower.parameters(), *regressor.parameters())}
    stray = [p for group in optimizer.param_groups for p in group["params"] if id(p) not in allowed]
    if stray:
        raise ValueError(
            f"hint_training: the optimiser holds {len(stray)} parameter(s) outside the student's lower "
            f"layers and the regressor; stage 1 trains only those"
        )
    student_lower.train()
    regressor.train()
    means = []
    for epoch in range(1, int(epochs) + 1):
        total, count = 0.0, 0
        for x, *_ in loader:
            with evaluation_mode(teacher_lower):
                hint = teacher_lower(x).data
            loss = hint_loss(hint, regressor(student_lower(x)))
            value = float(loss.item())
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"hint_training: the hint loss became {value} in epoch {epoch}; lower the learning rate"
                )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += value * len(x)
            count += len(x)
        means.append(total / count)
        if on_epoch is not None:
            on_epoch(epoch, means[-1])
    return means
