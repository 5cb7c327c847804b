# Type stub for minigrad._C, the compiled kernels (csrc/bindings.cpp, csrc/bind/<family>.cpp).
# tests/kernels/test_stub.py checks it names exactly the entry points _C and _C.ref expose,
# with the bound parameter names and keyword-only markers, so it cannot drift from them.
#
# Arrays are bound without conversion: each must already be C-contiguous with the dtype the
# kernel runs (float32 or float64, indices int64); arrays the kernel writes must be writeable
# and may not overlap any other argument. Errors: TypeError (kind, dtype), ValueError (layout,
# shape, size, overlap), both naming the op and the argument.
from collections.abc import Sequence

import numpy

MAX_SIZE: int
"""Every size a kernel derives from its arguments must lie in [0, MAX_SIZE] (2**48)."""

_Pair = Sequence[int]  # (height, width)
_Shape4 = Sequence[int]  # (N, C, H, W) or (C_out, C_in/groups, kH, kW)

# ------------------------------------------------------------------------ backend, threads
def backend_info() -> dict:
    """Chosen ISA, CPU ISA, thread count, compiler, build flags, each family's implementation."""

def set_num_threads(n: int) -> None:
    """Sets the thread count every kernel uses (1 <= n <= 4096)."""

def get_num_threads() -> int:
    """The thread count every kernel uses."""

def set_thread_policy(size_by_work: bool, shrink_when_busy: bool) -> None:
    """Team sizes from the work (else the whole cap) and shrinking while other processes are busy"""

def thread_policy() -> dict:
    """The team-size policy, the load the shrinking sees, and each family's 1-to-2 crossover"""

def team_for(family: str, work: int) -> int:
    """The team a call of that family and work would get now"""

def parse_proc_stat(text: str, cpus: list[int] | None = None) -> tuple[bool, float, float]:
    """Busy and total jiffies of /proc/stat text over the CPUs given"""

# ------------------------------------------------------------------------------------ gemm
def gemm(
    a: numpy.ndarray,
    b: numpy.ndarray,
    out: numpy.ndarray,
    trans_a: bool = False,
    trans_b: bool = False,
    alpha: float = 1.0,
    beta: float = 0.0,
) -> None:
    """out[i] = alpha op(a[i]) @ op(b[i]) + beta out[i] on 3-D arrays; batch 1 broadcasts."""

def gemm_bf16(
    a: numpy.ndarray,
    b: numpy.ndarray,
    out: numpy.ndarray,
    trans_a: bool = False,
    trans_b: bool = False,
    alpha: float = 1.0,
    beta: float = 0.0,
) -> None:
    """gemm with bfloat16 operands (uint16 bits) or float32 ones rounded to bfloat16 on the fly;
    float32 accumulation into float32 out (csrc/gemm/bf16.h)."""

# ------------------------------------------------------------------------------------ conv
def conv2d_forward(
    input: numpy.ndarray,
    weight: numpy.ndarray,
    bias: numpy.ndarray | None,
    out: numpy.ndarray,
    stride: _Pair = (1, 1),
    padding: _Pair = (0, 0),
    dilation: _Pair = (1, 1),
    groups: int = 1,
    relu: bool = False,
    algo: str = "auto",
) -> None:
    """out = conv2d(input, weight) + bias (then ReLU when relu); NCHW; algo auto, direct, chanvec,
    gemm, winograd (the model picks the tile), winograd_f2 or winograd_f4."""

def conv2d_backward(
    input: numpy.ndarray,
    weight: numpy.ndarray,
    grad_output: numpy.ndarray,
    grad_input: numpy.ndarray | None = None,
    grad_weight: numpy.ndarray | None = None,
    grad_bias: numpy.ndarray | None = None,
    stride: _Pair = (1, 1),
    padding: _Pair = (0, 0),
    dilation: _Pair = (1, 1),
    groups: int = 1,
    algo: str = "auto",
) -> None:
    """Writes the requested gradients of conv2d_forward (an array each, None to skip)."""

def conv2d_forward_bf16(
    input: numpy.ndarray,
    weight: numpy.ndarray,
    bias: numpy.ndarray | None,
    out: numpy.ndarray,
    stride: _Pair = (1, 1),
    padding: _Pair = (0, 0),
    dilation: _Pair = (1, 1),
    groups: int = 1,
    relu: bool = False,
) -> None:
    """conv2d_forward with bfloat16 input and weight (uint16 bits), float32 bias; out float32 or
    bfloat16 bits (the float32 accumulation rounded once)."""

def conv2d_backward_bf16(
    input: numpy.ndarray,
    weight: numpy.ndarray,
    grad_output: numpy.ndarray,
    grad_input: numpy.ndarray | None = None,
    grad_weight: numpy.ndarray | None = None,
    grad_bias: numpy.ndarray | None = None,
    stride: _Pair = (1, 1),
    padding: _Pair = (0, 0),
    dilation: _Pair = (1, 1),
    groups: int = 1,
) -> None:
    """conv2d_backward with bfloat16 input, weight and grad_output; float32 weight and bias
    gradients, grad_input float32 or bfloat16 bits."""

def conv2d_algorithm(
    input_shape: _Shape4,
    weight_shape: _Shape4,
    stride: _Pair = (1, 1),
    padding: _Pair = (0, 0),
    dilation: _Pair = (1, 1),
    groups: int = 1,
    algo: str = "auto",
    pass_: str = "forward",
) -> str:
    """The algorithm conv2d runs for these shapes and pass: direct, chanvec, winograd_f2,
    winograd_f4, gemm or gemm_pointwise."""

def conv2d_bf16_algorithm(
    input_shape: _Shape4,
    weight_shape: _Shape4,
    stride: _Pair = (1, 1),
    padding: _Pair = (0, 0),
    dilation: _Pair = (1, 1),
    groups: int = 1,
    pass_: str = "forward",
) -> str:
    """The road the bfloat16 convolution (autocast) takes for these shapes and pass: bf16_amx,
    bf16_amx_phases, bf16_shifted, bf16_im2col or bf16_widened."""

def conv2d_calls() -> dict[str, dict[str, int]]:
    """{pass: {algorithm: calls}} since the process started (passes forward, grad_input,
    grad_weight; algorithms that never ran are left out)."""

def winograd_transform(kind: str, tile: int, tiles: numpy.ndarray) -> numpy.ndarray:
    """X -> L X L^T for each tile of ``tiles`` (count, side, side), with the active ISA's
    kernels; kind input/weight/output/grad_output/grad_weight, tile 2 or 4 (csrc/winograd.h)."""

def conv2d_output_shape(
    input_shape: _Shape4,
    weight_shape: _Shape4,
    stride: _Pair,
    padding: _Pair,
    dilation: _Pair,
    groups: int,
    op: str = "conv2d",
) -> list[int]:
    """conv2d's output shape after its geometry rules (ValueError naming ``op`` otherwise)."""

# ------------------------------------------------------------------------------------ pool
def max_pool2d_forward(
    input: numpy.ndarray,
    out: numpy.ndarray,
    indices: numpy.ndarray,
    kernel_size: _Pair,
    stride: _Pair,
    padding: _Pair = (0, 0),
) -> None:
    """out = window maxima of input; indices (int64) = each maximum's position in its plane."""

def max_pool2d_backward(
    grad_output: numpy.ndarray,
    grad_input: numpy.ndarray,
    indices: numpy.ndarray,
    kernel_size: _Pair,
    stride: _Pair,
    padding: _Pair = (0, 0),
) -> None:
    """grad_input = grad_output routed through the forward's argmax indices."""

def avg_pool2d_forward(
    input: numpy.ndarray, out: numpy.ndarray, kernel_size: _Pair, stride: _Pair, padding: _Pair = (0, 0)
) -> None:
    """out = window means of input (padding counts as zeros)."""

def avg_pool2d_backward(
    grad_output: numpy.ndarray, grad_input: numpy.ndarray, kernel_size: _Pair, stride: _Pair, padding: _Pair = (0, 0)
) -> None:
    """grad_input = grad_output spread evenly over each window."""

def adaptive_avg_pool2d_forward(input: numpy.ndarray, out: numpy.ndarray) -> None:
    """out = cell means of input; the output size is out's last two dimensions."""

def adaptive_avg_pool2d_backward(grad_output: numpy.ndarray, grad_input: numpy.ndarray) -> None:
    """grad_input = grad_output spread evenly over each cell."""

def pool2d_output_shape(
    input_shape: _Shape4, kernel_size: _Pair, stride: _Pair, padding: _Pair, op: str = "pool2d"
) -> list[int]:
    """Pooling's output shape after its window rules (ValueError naming ``op`` otherwise)."""

# ------------------------------------------------------------------------------- batchnorm
def batch_norm_forward_train(
    x: numpy.ndarray,
    weight: numpy.ndarray | None,
    bias: numpy.ndarray | None,
    running_mean: numpy.ndarray | None,
    running_var: numpy.ndarray | None,
    out: numpy.ndarray,
    save_mean: numpy.ndarray,
    save_invstd: numpy.ndarray,
    momentum: float,
    eps: float,
    relu: bool = False,
    residual: numpy.ndarray | None = None,
) -> None:
    """Training batch norm of x (N, C, S): batch statistics, running-stat update, out
    (+ ``residual``, x's shape and dtype, then the ReLU). x, out, residual (and the gradients'
    grad_out, grad_input) may be bfloat16 bits (uint16), with float32 per-channel arrays."""

def batch_norm_forward_eval(
    x: numpy.ndarray,
    weight: numpy.ndarray | None,
    bias: numpy.ndarray | None,
    running_mean: numpy.ndarray,
    running_var: numpy.ndarray,
    out: numpy.ndarray,
    save_mean: numpy.ndarray,
    save_invstd: numpy.ndarray,
    eps: float,
    relu: bool = False,
    residual: numpy.ndarray | None = None,
) -> None:
    """Inference batch norm of x (N, C, S) from running statistics (+ residual, then the ReLU)."""

def batch_norm_backward(
    x: numpy.ndarray,
    grad_out: numpy.ndarray,
    weight: numpy.ndarray | None,
    bias: numpy.ndarray | None,
    mean: numpy.ndarray,
    invstd: numpy.ndarray,
    grad_input: numpy.ndarray | None,
    grad_weight: numpy.ndarray | None,
    grad_bias: numpy.ndarray | None,
    training: bool,
    relu: bool = False,
) -> None:
    """Gradients of batch norm (grad_* arrays written; None skips one)."""

# ----------------------------------------------------------------------------------- optim
def sgd_step(
    params: Sequence[numpy.ndarray],
    grads: Sequence[numpy.ndarray],
    momentum_buffers: Sequence[numpy.ndarray] | None,
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    first_step: bool,
) -> None:
    """One SGD step (momentum, Nesterov, weight decay) over a parameter group, in place."""

def adagrad_step(
    params: Sequence[numpy.ndarray],
    grads: Sequence[numpy.ndarray],
    sums: Sequence[numpy.ndarray],
    *,
    clr: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    """One Adagrad step over a parameter group, in place."""

def rmsprop_step(
    params: Sequence[numpy.ndarray],
    grads: Sequence[numpy.ndarray],
    square_avgs: Sequence[numpy.ndarray],
    grad_avgs: Sequence[numpy.ndarray] | None,
    momentum_buffers: Sequence[numpy.ndarray] | None,
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    maximize: bool,
) -> None:
    """One RMSprop step (centered, momentum) over a parameter group, in place."""

def adadelta_step(
    params: Sequence[numpy.ndarray],
    grads: Sequence[numpy.ndarray],
    square_avgs: Sequence[numpy.ndarray],
    acc_deltas: Sequence[numpy.ndarray],
    *,
    lr: float,
    rho: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    """One Adadelta step over a parameter group, in place."""

def adam_step(
    params: Sequence[numpy.ndarray],
    grads: Sequence[numpy.ndarray],
    exp_avgs: Sequence[numpy.ndarray],
    exp_avg_sqs: Sequence[numpy.ndarray],
    max_exp_avg_sqs: Sequence[numpy.ndarray] | None,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    step_size: float,
    bias_correction2_sqrt: float,
    decoupled_weight_decay: bool,
    amsgrad: bool,
    maximize: bool,
) -> None:
    """One Adam/AdamW step (AMSGrad optional) over a parameter group, in place."""

def nadam_step(
    params: Sequence[numpy.ndarray],
    grads: Sequence[numpy.ndarray],
    exp_avgs: Sequence[numpy.ndarray],
    exp_avg_sqs: Sequence[numpy.ndarray],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    bias_correction2: float,
    grad_coef: float,
    avg_coef: float,
    decoupled_weight_decay: bool,
    maximize: bool,
) -> None:
    """One NAdam step over a parameter group, in place."""

# --------------------------------------------------------------------------------- eltwise
def convert(src: numpy.ndarray, dst: numpy.ndarray) -> None:
    """dst = src converted: float32 -> bfloat16 bits (uint16; to nearest, ties to even) or back."""

def relu_forward(x: numpy.ndarray, out: numpy.ndarray) -> None:
    """out = max(x, 0); out may be x itself. float32, float64 or bfloat16 bits (uint16), as
    relu_backward and add."""

def relu_backward(grad: numpy.ndarray, y: numpy.ndarray, out: numpy.ndarray) -> None:
    """out = grad where y > 0 else 0; out may be one of the inputs itself."""

def add(a: numpy.ndarray, b: numpy.ndarray, out: numpy.ndarray) -> None:
    """out = a + b (same shape); out may be one of the inputs itself."""

# ------------------------------------------------------------------------------------- ref
class _Ref:
    """_C.ref: the plain scalar reference kernels (test oracles), with the fast signatures
    (conv2d without ``algo``)."""
    @staticmethod
    def gemm(
        a: numpy.ndarray,
        b: numpy.ndarray,
        out: numpy.ndarray,
        trans_a: bool = False,
        trans_b: bool = False,
        alpha: float = 1.0,
        beta: float = 0.0,
    ) -> None:
        """Reference gemm."""
    @staticmethod
    def gemm_bf16(
        a: numpy.ndarray,
        b: numpy.ndarray,
        out: numpy.ndarray,
        trans_a: bool = False,
        trans_b: bool = False,
        alpha: float = 1.0,
        beta: float = 0.0,
    ) -> None:
        """Reference gemm_bf16."""
    @staticmethod
    def conv2d_forward(
        input: numpy.ndarray,
        weight: numpy.ndarray,
        bias: numpy.ndarray | None,
        out: numpy.ndarray,
        stride: _Pair = (1, 1),
        padding: _Pair = (0, 0),
        dilation: _Pair = (1, 1),
        groups: int = 1,
        relu: bool = False,
    ) -> None:
        """Reference conv2d_forward."""
    @staticmethod
    def conv2d_backward(
        input: numpy.ndarray,
        weight: numpy.ndarray,
        grad_output: numpy.ndarray,
        grad_input: numpy.ndarray | None = None,
        grad_weight: numpy.ndarray | None = None,
        grad_bias: numpy.ndarray | None = None,
        stride: _Pair = (1, 1),
        padding: _Pair = (0, 0),
        dilation: _Pair = (1, 1),
        groups: int = 1,
    ) -> None:
        """Reference conv2d_backward."""
    @staticmethod
    def winograd_transform(kind: str, tile: int, tiles: numpy.ndarray) -> numpy.ndarray:
        """Reference winograd_transform (plain matrix products)."""
    @staticmethod
    def max_pool2d_forward(
        input: numpy.ndarray,
        out: numpy.ndarray,
        indices: numpy.ndarray,
        kernel_size: _Pair,
        stride: _Pair,
        padding: _Pair = (0, 0),
    ) -> None:
        """Reference max_pool2d_forward."""
    @staticmethod
    def max_pool2d_backward(
        grad_output: numpy.ndarray,
        grad_input: numpy.ndarray,
        indices: numpy.ndarray,
        kernel_size: _Pair,
        stride: _Pair,
        padding: _Pair = (0, 0),
    ) -> None:
        """Reference max_pool2d_backward."""
    @staticmethod
    def avg_pool2d_forward(
        input: numpy.ndarray, out: numpy.ndarray, kernel_size: _Pair, stride: _Pair, padding: _Pair = (0, 0)
    ) -> None:
        """Reference avg_pool2d_forward."""
    @staticmethod
    def avg_pool2d_backward(
        grad_output: numpy.ndarray,
        grad_input: numpy.ndarray,
        kernel_size: _Pair,
        stride: _Pair,
        padding: _Pair = (0, 0),
    ) -> None:
        """Reference avg_pool2d_backward."""
    @staticmethod
    def adaptive_avg_pool2d_forward(input: numpy.ndarray, out: numpy.ndarray) -> None:
        """Reference adaptive_avg_pool2d_forward."""
    @staticmethod
    def adaptive_avg_pool2d_backward(grad_output: numpy.ndarray, grad_input: numpy.ndarray) -> None:
        """Reference adaptive_avg_pool2d_backward."""
    @staticmethod
    def batch_norm_forward_train(
        x: numpy.ndarray,
        weight: numpy.ndarray | None,
        bias: numpy.ndarray | None,
        running_mean: numpy.ndarray | None,
        running_var: numpy.ndarray | None,
        out: numpy.ndarray,
        save_mean: numpy.ndarray,
        save_invstd: numpy.ndarray,
        momentum: float,
        eps: float,
        relu: bool = False,
        residual: numpy.ndarray | None = None,
    ) -> None:
        """Reference batch_norm_forward_train."""
    @staticmethod
    def batch_norm_forward_eval(
        x: numpy.ndarray,
        weight: numpy.ndarray | None,
        bias: numpy.ndarray | None,
        running_mean: numpy.ndarray,
        running_var: numpy.ndarray,
        out: numpy.ndarray,
        save_mean: numpy.ndarray,
        save_invstd: numpy.ndarray,
        eps: float,
        relu: bool = False,
        residual: numpy.ndarray | None = None,
    ) -> None:
        """Reference batch_norm_forward_eval."""
    @staticmethod
    def batch_norm_backward(
        x: numpy.ndarray,
        grad_out: numpy.ndarray,
        weight: numpy.ndarray | None,
        bias: numpy.ndarray | None,
        mean: numpy.ndarray,
        invstd: numpy.ndarray,
        grad_input: numpy.ndarray | None,
        grad_weight: numpy.ndarray | None,
        grad_bias: numpy.ndarray | None,
        training: bool,
        relu: bool = False,
    ) -> None:
        """Reference batch_norm_backward."""
    @staticmethod
    def sgd_step(
        params: Sequence[numpy.ndarray],
        grads: Sequence[numpy.ndarray],
        momentum_buffers: Sequence[numpy.ndarray] | None,
        *,
        lr: float,
        momentum: float,
        dampening: float,
        weight_decay: float,
        nesterov: bool,
        maximize: bool,
        first_step: bool,
    ) -> None:
        """Reference sgd_step."""
    @staticmethod
    def adagrad_step(
        params: Sequence[numpy.ndarray],
        grads: Sequence[numpy.ndarray],
        sums: Sequence[numpy.ndarray],
        *,
        clr: float,
        eps: float,
        weight_decay: float,
        maximize: bool,
    ) -> None:
        """Reference adagrad_step."""
    @staticmethod
    def rmsprop_step(
        params: Sequence[numpy.ndarray],
        grads: Sequence[numpy.ndarray],
        square_avgs: Sequence[numpy.ndarray],
        grad_avgs: Sequence[numpy.ndarray] | None,
        momentum_buffers: Sequence[numpy.ndarray] | None,
        *,
        lr: float,
        alpha: float,
        eps: float,
        weight_decay: float,
        momentum: float,
        centered: bool,
        maximize: bool,
    ) -> None:
        """Reference rmsprop_step."""
    @staticmethod
    def adadelta_step(
        params: Sequence[numpy.ndarray],
        grads: Sequence[numpy.ndarray],
        square_avgs: Sequence[numpy.ndarray],
        acc_deltas: Sequence[numpy.ndarray],
        *,
        lr: float,
        rho: float,
        eps: float,
        weight_decay: float,
        maximize: bool,
    ) -> None:
        """Reference adadelta_step."""
    @staticmethod
    def adam_step(
        params: Sequence[numpy.ndarray],
        grads: Sequence[numpy.ndarray],
        exp_avgs: Sequence[numpy.ndarray],
        exp_avg_sqs: Sequence[numpy.ndarray],
        max_exp_avg_sqs: Sequence[numpy.ndarray] | None,
        *,
        lr: float,
        beta1: float,
        beta2: float,
        eps: float,
        weight_decay: float,
        step_size: float,
        bias_correction2_sqrt: float,
        decoupled_weight_decay: bool,
        amsgrad: bool,
        maximize: bool,
    ) -> None:
        """Reference adam_step."""
    @staticmethod
    def nadam_step(
        params: Sequence[numpy.ndarray],
        grads: Sequence[numpy.ndarray],
        exp_avgs: Sequence[numpy.ndarray],
        exp_avg_sqs: Sequence[numpy.ndarray],
        *,
        lr: float,
        beta1: float,
        beta2: float,
        eps: float,
        weight_decay: float,
        bias_correction2: float,
        grad_coef: float,
        avg_coef: float,
        decoupled_weight_decay: bool,
        maximize: bool,
    ) -> None:
        """Reference nadam_step."""
    @staticmethod
    def relu_forward(x: numpy.ndarray, out: numpy.ndarray) -> None:
        """Reference relu_forward."""
    @staticmethod
    def relu_backward(grad: numpy.ndarray, y: numpy.ndarray, out: numpy.ndarray) -> None:
        """Reference relu_backward."""
    @staticmethod
    def add(a: numpy.ndarray, b: numpy.ndarray, out: numpy.ndarray) -> None:
        """Reference add."""

ref: _Ref
