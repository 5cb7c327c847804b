// The module definition, and nothing else: each family's bindings live beside the checking
// core in bind/<family>.cpp (validate with check.h, release the GIL, call the kernels) and
// register themselves here. Kernels never see an unchecked size.
#include "bind/bind.h"

PYBIND11_MODULE(_C, m) {
  using namespace mg;
  m.doc() = "minigrad's compiled kernels (validated entry points; see csrc/README.md)";
  bind_backend(m);  // first: checks MINIGRAD_ISA and fixes the thread count before any kernel
  py::module_ ref = m.def_submodule("ref", "Plain scalar reference kernels (test oracles)");
  // The order is backend_info()["implementations"]'s order.
  bind_gemm(m, ref);
  bind_conv(m, ref);
  bind_pool(m, ref);
  bind_batchnorm(m, ref);
  bind_optim(m, ref);
  bind_eltwise(m, ref);
}
