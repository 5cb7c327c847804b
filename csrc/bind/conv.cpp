// conv2d_forward / conv2d_backward / conv2d_algorithm / conv2d_output_shape.
//
// conv_geometry is the one home of conv2d's geometry rules (hyper-parameter ranges, weight
// fitting input and groups, kernel fitting the padded input, every derived size bounded):
// each is needed to keep the kernels inside their arrays, so C++ enforces them whatever Python
// passes, and the Python op reaches the same function through _C.conv2d_output_shape (with
// its own op name) instead of re-implementing them.
#include <vector>

#include "bind/bind.h"
#include "gemm/bf16.h"
#include "conv.h"
#include "parallel.h"
#include "winograd.h"

namespace mg {
namespace {

// Checks the hyper-parameters against x (n, ci, h, w) and w (co, ci/groups, kh, kw) and
// returns the geometry; throws ValueError naming the shapes when they do not fit, or when
// any size the conv kernels derive from them (padded planes, patch matrices, per-thread
// workspace) would leave Sizes' range.
ConvShape conv_geometry(const char* op, const Shape4& x, const Shape4& w, Pair stride,
                        Pair padding, Pair dilation, int64_t groups) {
  const Sizes z(op, [&] {
    return "input " + tuple_str(x) + ", weight " + tuple_str(w) + ", stride " +
           tuple_str(stride) + ", padding " + tuple_str(padding) + ", dilation " +
           tuple_str(dilation) + ", groups " + std::to_string(groups);
  });
  if (stride[0] < 1 || stride[1] < 1 || dilation[0] < 1 || dilation[1] < 1 || padding[0] < 0 ||
      padding[1] < 0 || groups < 1)
    throw py::value_error(std::string(op) + ": stride " + tuple_str(stride) + " and dilation " +
                          tuple_str(dilation) + " must be >= 1, padding " + tuple_str(padding) +
                          " >= 0 and groups " + std::to_string(groups) + " >= 1");
  for (int i = 0; i < 4; ++i) z(x[i], "input extent"), z(w[i], "weight extent");
  for (int i = 0; i < 2; ++i)
    z(stride[i], "stride"), z(padding[i], "padding"), z(dilation[i], "dilation");
  ConvShape s{x[0], x[1], x[2], x[3], w[0], w[2], w[3], stride[0], stride[1], padding[0],
              padding[1], dilation[0], dilation[1], groups};
  if (s.co % groups != 0 || w[1] * groups != s.ci || s.kh < 1 || s.kw < 1)
    throw py::value_error(std::string(op) + ": weight " + tuple_str(w) + " does not fit input " +
                          tuple_str(x) + " with groups=" + std::to_string(groups) +
                          " (need weight (C_out, C_in/groups, kH, kW) with kH, kW >= 1 and C_out divisible by groups)");
  const int64_t hp = z.add(s.h, z.mul(2, s.ph, "padding"), "padded input height");
  const int64_t wp = z.add(s.w, z.mul(2, s.pw, "padding"), "padded input width");
  const int64_t reach_h = z.mul(s.dh, s.kh - 1, "dilated kernel height");
  const int64_t reach_w = z.mul(s.dw, s.kw - 1, "dilated kernel width");
  if (hp < reach_h + 1 || wp < reach_w + 1)
    throw py::value_error(std::string(op) + ": kernel " + tuple_str(Pair{s.kh, s.kw}) +
                          " with dilation " + tuple_str(dilation) + " is larger than input " +
                          tuple_str(x) + " padded by " + tuple_str(padding));
  // An upper bound on every buffer conv.cpp allocates per thread (in elements; vectors are at
  // most 16 wide, GEMM chunks at most 512 columns, direct weight-gradient chunks at most 64
  // images): padded images and padded output gradients, patch matrices, repacked weights.
  const int64_t channels = z.add(z.add(s.ci, s.co, "channels"), 16, "channels");
  const int64_t rows = z.add(z.add(hp, z.mul(2, reach_h, "padded rows"), "padded rows"), 16, "padded rows");
  const int64_t cols = z.add(z.add(wp, z.mul(2, reach_w, "padded columns"), "padded columns"), 64, "padded columns");
  const int64_t taps = z.product({s.ci, s.kh, s.kw}, "patch size");
  const int64_t plane = z.mul(s.ho(), s.wo(), "output plane");
  const int64_t padded = z.product({64, channels, rows, cols}, "padded workspace");
  const int64_t patches = z.mul(z.add(taps, channels, "patch rows"), z.add(plane, 528, "patch columns"), "patch workspace");
  const int64_t weights = z.mul(z.add(taps, 16, "weight rows"), channels, "weight workspace");
  z.mul(z.add(z.add(padded, patches, "workspace"), weights, "workspace"), num_threads(), "workspace");
  return s;
}

Shape4 shape4(const py::array& x) { return {x.shape(0), x.shape(1), x.shape(2), x.shape(3)}; }

template <typename T>
ConvShape conv_shape(const char* op, const py::array& x, const py::array& w, Pair stride,
                     Pair padding, Pair dilation, int64_t groups) {
  checked<T>(x, op, "input", {kAny, kAny, kAny, kAny});
  checked<T>(w, op, "weight", {kAny, kAny, kAny, kAny});
  return conv_geometry(op, shape4(x), shape4(w), stride, padding, dilation, groups);
}

ConvAlgo parse_algo(const std::string& algo) {
  if (algo == "auto") return ConvAlgo::automatic;
  if (algo == "direct") return ConvAlgo::direct;
  if (algo == "gemm") return ConvAlgo::gemm;
  if (algo == "chanvec") return ConvAlgo::chanvec;
  if (algo == "winograd") return ConvAlgo::winograd;
  if (algo == "winograd_f2") return ConvAlgo::winograd_f2;
  if (algo == "winograd_f4") return ConvAlgo::winograd_f4;
  throw py::value_error(
      "conv2d: algo must be 'auto', 'direct', 'chanvec', 'gemm', 'winograd', 'winograd_f2' or "
      "'winograd_f4', got '" + algo + "'");
}

ConvPass parse_pass(const char* op, const std::string& pass) {
  if (pass == "forward") return ConvPass::forward;
  if (pass == "grad_input") return ConvPass::grad_input;
  if (pass == "grad_weight") return ConvPass::grad_weight;
  throw py::value_error(std::string(op) + ": pass_ must be 'forward', 'grad_input' or " +
                        "'grad_weight', got '" + pass + "'");
}

const char* const kTransformNames[] = {"input", "weight", "output", "grad_output", "grad_weight"};

WinogradTransform parse_transform(const char* op, const std::string& kind) {
  for (int k = 0; k < 5; ++k)
    if (kind == kTransformNames[k]) return static_cast<WinogradTransform>(k);
  throw py::value_error(std::string(op) + ": kind must be 'input', 'weight', 'output', "
                        "'grad_output' or 'grad_weight', got '" + kind + "'");
}

// The Winograd tile transforms alone, (count, side, side) tiles in, a new array out: the fast
// kernels of the active ISA, or the reference twin, for the tests to compare.
template <bool Ref>
py::array winograd_transform_binding(const std::string& kind, int64_t tile, const py::array& tiles) {
  const char* op = Ref ? "ref.winograd_transform" : "winograd_transform";
  const WinogradTransform k = parse_transform(op, kind);
  if (tile != 2 && tile != 4)
    throw py::value_error(std::string(op) + ": tile must be 2 or 4, got " + std::to_string(tile));
  const int m = static_cast<int>(tile);
  const int64_t r = winograd_in_side(k, m), q = winograd_out_side(k, m);
  return by_dtype(tiles, op, "tiles", [&](auto zero) -> py::array {
    using T = decltype(zero);
    const T* in = checked<T>(tiles, op, "tiles", {kAny, r, r});
    const int64_t count = tiles.shape(0);
    py::array_t<T> out({count, q, q});
    T* po = out.mutable_data();
    py::gil_scoped_release release;
    if (Ref)
      winograd_transform_ref<T>(k, m, in, count, po);
    else
      winograd_transform<T>(k, m, in, count, po);
    return out;
  });
}

// {pass: {algorithm: calls}} since the process started, algorithms with no call left out.
py::dict conv2d_calls() {
  py::dict passes;
  const char* pass_names[] = {"forward", "grad_input", "grad_weight"};
  for (int p = 0; p < 3; ++p) {
    py::dict algos;
    for (int a = 0; a <= static_cast<int>(ConvAlgo::winograd_f4); ++a) {
      const int64_t n = conv_calls(static_cast<ConvPass>(p), static_cast<ConvAlgo>(a));
      if (n) algos[conv_algo_name(static_cast<ConvAlgo>(a))] = n;
    }
    passes[pass_names[p]] = algos;
  }
  return passes;
}

template <typename T, bool Ref>
void conv2d_forward_typed(const py::array& x, const py::array& w, const py::object& b,
                          const py::array& out, Pair stride, Pair padding, Pair dilation,
                          int64_t groups, bool relu, const std::string& algo) {
  const char* op = Ref ? "conv2d_forward_ref" : "conv2d_forward";
  const ConvShape s = conv_shape<T>(op, x, w, stride, padding, dilation, groups);
  const ConvAlgo a = parse_algo(algo);
  const T* pb = optional_checked<T>(b, op, "bias", {s.co});
  T* py_ = checked<T>(out, op, "out", {s.n, s.co, s.ho(), s.wo()}, true);
  check_no_overlap(op, {extent_of(x, "input", false), extent_of(w, "weight", false),
                        extent_of(out, "out", true), optional_extent(b, "bias", false)});
  const T* px = static_cast<const T*>(x.data());
  const T* pw = static_cast<const T*>(w.data());
  py::gil_scoped_release release;
  if (Ref)
    conv2d_forward_ref<T>(s, px, pw, pb, py_, relu);
  else
    conv2d_forward<T>(s, px, pw, pb, py_, relu, a);
}

template <typename T, bool Ref>
void conv2d_backward_typed(const py::array& x, const py::array& w, const py::array& gy,
                           const py::object& gx, const py::object& gw, const py::object& gb,
                           Pair stride, Pair padding, Pair dilation, int64_t groups,
                           const std::string& algo) {
  const char* op = Ref ? "conv2d_backward_ref" : "conv2d_backward";
  const ConvShape s = conv_shape<T>(op, x, w, stride, padding, dilation, groups);
  const ConvAlgo a = parse_algo(algo);
  const T* pgy = checked<T>(gy, op, "grad_output", {s.n, s.co, s.ho(), s.wo()});
  T* pgx = optional_checked<T>(gx, op, "grad_input", {s.n, s.ci, s.h, s.w}, true);
  T* pgw = optional_checked<T>(gw, op, "grad_weight", {s.co, s.ci / s.groups, s.kh, s.kw}, true);
  T* pgb = optional_checked<T>(gb, op, "grad_bias", {s.co}, true);
  check_no_overlap(op, {extent_of(x, "input", false), extent_of(w, "weight", false),
                        extent_of(gy, "grad_output", false), optional_extent(gx, "grad_input", true),
                        optional_extent(gw, "grad_weight", true),
                        optional_extent(gb, "grad_bias", true)});
  const T* px = static_cast<const T*>(x.data());
  const T* pw = static_cast<const T*>(w.data());
  py::gil_scoped_release release;
  if (Ref)
    conv2d_backward_ref<T>(s, px, pw, pgy, pgx, pgw, pgb);
  else
    conv2d_backward<T>(s, px, pw, pgy, pgx, pgw, pgb, a);
}

template <bool Ref>
void conv2d_forward_binding(const py::array& x, const py::array& w, const py::object& b,
                            const py::array& out, Pair stride, Pair padding, Pair dilation,
                            int64_t groups, bool relu, const std::string& algo) {
  by_dtype(x, Ref ? "conv2d_forward_ref" : "conv2d_forward", "input", [&](auto zero) {
    conv2d_forward_typed<decltype(zero), Ref>(x, w, b, out, stride, padding, dilation, groups,
                                              relu, algo);
  });
}

template <bool Ref>
void conv2d_backward_binding(const py::array& x, const py::array& w, const py::array& gy,
                             const py::object& gx, const py::object& gw, const py::object& gb,
                             Pair stride, Pair padding, Pair dilation, int64_t groups,
                             const std::string& algo) {
  by_dtype(x, Ref ? "conv2d_backward_ref" : "conv2d_backward", "input", [&](auto zero) {
    conv2d_backward_typed<decltype(zero), Ref>(x, w, gy, gx, gw, gb, stride, padding, dilation,
                                               groups, algo);
  });
}

// Autocast's bfloat16 convolution: input, weight and grad_output as bfloat16 bits (uint16),
// bias and the weight gradients float32, out and grad_input float32 or bfloat16 bits.
void conv2d_forward_bf16_binding(const py::array& x, const py::array& w, const py::object& b,
                                 const py::array& out, Pair stride, Pair padding, Pair dilation,
                                 int64_t groups, bool relu) {
  const char* op = "conv2d_forward_bf16";
  const ConvShape s = conv_shape<uint16_t>(op, x, w, stride, padding, dilation, groups);
  const float* pb = optional_checked<float>(b, op, "bias", {s.co});
  by_bf16_operand(out, op, "out", [&](auto zero) {
    using S = decltype(zero);
    auto* py_ = reinterpret_cast<kernel_t<S>*>(checked<S>(out, op, "out", {s.n, s.co, s.ho(), s.wo()}, true));
    check_no_overlap(op, {extent_of(x, "input", false), extent_of(w, "weight", false),
                          extent_of(out, "out", true), optional_extent(b, "bias", false)});
    const auto* px = static_cast<const bf16*>(x.data());
    const auto* pw = static_cast<const bf16*>(w.data());
    py::gil_scoped_release release;
    conv2d_forward_bf16(s, px, pw, pb, py_, relu);
  });
}

void conv2d_backward_bf16_binding(const py::array& x, const py::array& w, const py::array& gy,
                                  const py::object& gx, const py::object& gw,
                                  const py::object& gb, Pair stride, Pair padding, Pair dilation,
                                  int64_t groups) {
  const char* op = "conv2d_backward_bf16";
  const ConvShape s = conv_shape<uint16_t>(op, x, w, stride, padding, dilation, groups);
  const auto* pgy = reinterpret_cast<const bf16*>(
      checked<uint16_t>(gy, op, "grad_output", {s.n, s.co, s.ho(), s.wo()}));
  float* pgw = optional_checked<float>(gw, op, "grad_weight", {s.co, s.ci / s.groups, s.kh, s.kw}, true);
  float* pgb = optional_checked<float>(gb, op, "grad_bias", {s.co}, true);
  auto run = [&](auto zero) {
    using S = decltype(zero);
    auto* pgx = reinterpret_cast<kernel_t<S>*>(
        optional_checked<S>(gx, op, "grad_input", {s.n, s.ci, s.h, s.w}, true));
    check_no_overlap(op, {extent_of(x, "input", false), extent_of(w, "weight", false),
                          extent_of(gy, "grad_output", false), optional_extent(gx, "grad_input", true),
                          optional_extent(gw, "grad_weight", true),
                          optional_extent(gb, "grad_bias", true)});
    const auto* px = static_cast<const bf16*>(x.data());
    const auto* pw = static_cast<const bf16*>(w.data());
    py::gil_scoped_release release;
    conv2d_backward_bf16(s, px, pw, pgy, pgx, pgw, pgb);
  };
  if (gx.is_none() || !py::isinstance<py::array>(gx))
    run(float{});  // None, or a non-array the float32 check refuses by name
  else
    by_bf16_operand(py::reinterpret_borrow<py::array>(gx), op, "grad_input", run);
}

// Which algorithm conv2d runs for these shapes and this pass ("direct", "chanvec",
// "winograd_f2", "winograd_f4", "gemm" or "gemm_pointwise").
std::string conv2d_algorithm(Shape4 x, Shape4 w, Pair stride, Pair padding, Pair dilation,
                             int64_t groups, const std::string& algo, const std::string& pass) {
  const ConvPass which = parse_pass("conv2d_algorithm", pass);
  const ConvShape s = conv_geometry("conv2d_algorithm", x, w, stride, padding, dilation, groups);
  const ConvAlgo chosen = conv_choose_algo(s, parse_algo(algo), which);
  if (chosen != ConvAlgo::gemm) return conv_algo_name(chosen);
  const bool pointwise = s.kh == 1 && s.kw == 1 && s.sh == 1 && s.sw == 1 && s.ph == 0 && s.pw == 0;
  return pointwise ? "gemm_pointwise" : "gemm";
}

// The road of the bfloat16 convolution (autocast) for these shapes and this pass.
std::string conv2d_bf16_algorithm(Shape4 x, Shape4 w, Pair stride, Pair padding, Pair dilation,
                                  int64_t groups, const std::string& pass) {
  const ConvPass which = parse_pass("conv2d_bf16_algorithm", pass);
  const ConvShape s = conv_geometry("conv2d_bf16_algorithm", x, w, stride, padding, dilation, groups);
  return bf16_conv_path_name(bf16_conv_path(s, which));
}

}  // namespace

void bind_conv(py::module_& m, py::module_& ref) {
  m.def("conv2d_forward", &conv2d_forward_binding<false>, "input"_a.noconvert(),
        "weight"_a.noconvert(), "bias"_a.none(true), "out"_a.noconvert(), "stride"_a = Pair{1, 1},
        "padding"_a = Pair{0, 0}, "dilation"_a = Pair{1, 1}, "groups"_a = 1, "relu"_a = false,
        "algo"_a = "auto",
        "out = conv2d(input, weight) + bias (then ReLU when relu=True); NCHW, float32 or "
        "float64; algo 'auto', 'direct' (stride 1, groups 1 only) or 'gemm'");
  m.def("conv2d_backward", &conv2d_backward_binding<false>, "input"_a.noconvert(),
        "weight"_a.noconvert(), "grad_output"_a.noconvert(),
        "grad_input"_a.none(true) = py::none(), "grad_weight"_a.none(true) = py::none(),
        "grad_bias"_a.none(true) = py::none(), "stride"_a = Pair{1, 1}, "padding"_a = Pair{0, 0},
        "dilation"_a = Pair{1, 1}, "groups"_a = 1, "algo"_a = "auto",
        "Writes the requested gradients of conv2d_forward (an array each, None to skip)");
  m.def("conv2d_forward_bf16", &conv2d_forward_bf16_binding, "input"_a.noconvert(),
        "weight"_a.noconvert(), "bias"_a.none(true), "out"_a.noconvert(), "stride"_a = Pair{1, 1},
        "padding"_a = Pair{0, 0}, "dilation"_a = Pair{1, 1}, "groups"_a = 1, "relu"_a = false,
        "conv2d_forward with bfloat16 input and weight (uint16 bits), float32 bias; out float32 "
        "or bfloat16 bits");
  m.def("conv2d_backward_bf16", &conv2d_backward_bf16_binding, "input"_a.noconvert(),
        "weight"_a.noconvert(), "grad_output"_a.noconvert(),
        "grad_input"_a.none(true) = py::none(), "grad_weight"_a.none(true) = py::none(),
        "grad_bias"_a.none(true) = py::none(), "stride"_a = Pair{1, 1}, "padding"_a = Pair{0, 0},
        "dilation"_a = Pair{1, 1}, "groups"_a = 1,
        "conv2d_backward with bfloat16 input, weight and grad_output; float32 weight and bias "
        "gradients, grad_input float32 or bfloat16 bits");
  m.def("conv2d_algorithm", &conv2d_algorithm, "input_shape"_a, "weight_shape"_a,
        "stride"_a = Pair{1, 1}, "padding"_a = Pair{0, 0}, "dilation"_a = Pair{1, 1}, "groups"_a = 1,
        "algo"_a = "auto", "pass_"_a = "forward",
        "The algorithm conv2d runs for these shapes in this pass ('forward', 'grad_input' or "
        "'grad_weight')");
  m.def("conv2d_bf16_algorithm", &conv2d_bf16_algorithm, "input_shape"_a, "weight_shape"_a,
        "stride"_a = Pair{1, 1}, "padding"_a = Pair{0, 0}, "dilation"_a = Pair{1, 1}, "groups"_a = 1,
        "pass_"_a = "forward",
        "The road conv2d_forward_bf16 / conv2d_backward_bf16 take for these shapes in this pass: "
        "'bf16_amx', 'bf16_amx_phases', 'bf16_shifted' or 'bf16_im2col'");
  // The geometry rules for the Python op to check before it allocates the output (errors name
  // `op`); returns the output shape.
  m.def("conv2d_output_shape",
        [](Shape4 x, Shape4 w, Pair stride, Pair padding, Pair dilation, int64_t groups,
           const std::string& op) {
          const ConvShape s = conv_geometry(op.c_str(), x, w, stride, padding, dilation, groups);
          return Shape4{s.n, s.co, s.ho(), s.wo()};
        },
        "input_shape"_a, "weight_shape"_a, "stride"_a, "padding"_a, "dilation"_a, "groups"_a,
        "op"_a = "conv2d");

  // The reference has one algorithm, the formula: no `algo` argument.
  ref.def("conv2d_forward",
          [](const py::array& x, const py::array& w, const py::object& b, const py::array& out,
             Pair stride, Pair padding, Pair dilation, int64_t groups, bool relu) {
            conv2d_forward_binding<true>(x, w, b, out, stride, padding, dilation, groups, relu, "auto");
          },
          "input"_a.noconvert(), "weight"_a.noconvert(), "bias"_a.none(true), "out"_a.noconvert(),
          "stride"_a = Pair{1, 1}, "padding"_a = Pair{0, 0}, "dilation"_a = Pair{1, 1},
          "groups"_a = 1, "relu"_a = false);
  ref.def("conv2d_backward",
          [](const py::array& x, const py::array& w, const py::array& gy, const py::object& gx,
             const py::object& gw, const py::object& gb, Pair stride, Pair padding, Pair dilation,
             int64_t groups) {
            conv2d_backward_binding<true>(x, w, gy, gx, gw, gb, stride, padding, dilation, groups, "auto");
          },
          "input"_a.noconvert(), "weight"_a.noconvert(), "grad_output"_a.noconvert(),
          "grad_input"_a.none(true) = py::none(), "grad_weight"_a.none(true) = py::none(),
          "grad_bias"_a.none(true) = py::none(), "stride"_a = Pair{1, 1}, "padding"_a = Pair{0, 0},
          "dilation"_a = Pair{1, 1}, "groups"_a = 1);

  m.def("winograd_transform", &winograd_transform_binding<false>, "kind"_a, "tile"_a,
        "tiles"_a.noconvert(),
        "X -> L X L^T for each (side x side) tile of `tiles` (count, side, side) with the "
        "active ISA's kernels; kind 'input', 'weight', 'output', 'grad_output' or "
        "'grad_weight', tile 2 (F(2x2,3x3)) or 4 (F(4x4,3x3))");
  ref.def("winograd_transform", &winograd_transform_binding<true>, "kind"_a, "tile"_a,
          "tiles"_a.noconvert());
  m.def("conv2d_calls", &conv2d_calls,
        "Calls per pass ('forward', 'grad_input', 'grad_weight') and algorithm so far");

  add_implementation("conv2d", [] {
    return std::string(conv_direct_impl_name()) + " + " + conv_chanvec_impl_name() + " + " +
           winograd_impl_name() + " + im2col_gemm";
  });
}

}  // namespace mg
