// The extension module: the kernels, the option structs (built by keyword only) and the engine's
// switches, as Python sees them.

#include <torch/extension.h>

#include "gemm.h"
#include "kernels.h"
#include "memory.h"
#include "options.h"
#include "threads.h"

namespace py = pybind11;
using namespace lstmkit;

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "lstmkit fast engine: the recurrences of the LSTM family, forward and backward";
#ifdef LSTMKIT_SOURCES
  // the hash of the sources this binary was built from, which a build at install records
  // (lstmkit._engine.build.installed loads the binary only while the sources still match)
#define LSTMKIT_STRING_(x) #x
#define LSTMKIT_STRING(x) LSTMKIT_STRING_(x)
  m.attr("SOURCES") = LSTMKIT_STRING(LSTMKIT_SOURCES);
#endif
  m.def("own_gemm", &own_gemm, "use the engine's own kernel for the per-step float products (1) or BLAS (0); -1 "
        "asks; returns the previous setting (-1: the kernel is not compiled in)");
  m.def("block_work", &block_work, "set the least multiply-adds per thread block and step (n > 0); returns the "
        "previous value");
  m.def("cache_info", &cache_info, "the engine's cache of freed buffers: [mappings, bytes, capacity in bytes]");
  m.def("set_cache_capacity", &set_cache_capacity, "set the cache's capacity in bytes (n >= 0); returns the "
        "previous one");
  m.def("empty_cache", &empty_cache, "hand the cached buffers back to the system; returns the bytes released");
  py::class_<GatedOptions>(m, "GatedOptions", "the options of the gated LSTM kernels, by name")
      .def(py::init([](bool input_gate, bool forget_gate, bool coupled, bool output_gate, bool identity_g,
                       bool identity_h, bool peepholes, bool gate_recurrence) {
             return GatedOptions{input_gate, forget_gate, coupled, output_gate, identity_g, identity_h, peepholes,
                                 gate_recurrence};
           }),
           py::kw_only(), py::arg("input_gate"), py::arg("forget_gate"), py::arg("coupled"), py::arg("output_gate"),
           py::arg("identity_g"), py::arg("identity_h"), py::arg("peepholes"), py::arg("gate_recurrence"))
      .def_readonly("input_gate", &GatedOptions::input_gate)
      .def_readonly("forget_gate", &GatedOptions::forget_gate)
      .def_readonly("coupled", &GatedOptions::coupled)
      .def_readonly("output_gate", &GatedOptions::output_gate)
      .def_readonly("identity_g", &GatedOptions::identity_g)
      .def_readonly("identity_h", &GatedOptions::identity_h)
      .def_readonly("peepholes", &GatedOptions::peepholes)
      .def_readonly("gate_recurrence", &GatedOptions::gate_recurrence);
  py::enum_<Squash1997>(m, "Squash1997")
      .value("scaled", Squash1997::scaled).value("logistic", Squash1997::logistic)
      .value("tanh", Squash1997::tanh).value("identity", Squash1997::identity);
  py::enum_<Recurrent1997>(m, "Recurrent1997")
      .value("all", Recurrent1997::all).value("cells", Recurrent1997::cells).value("none", Recurrent1997::none);
  py::class_<Options1997>(m, "Options1997", "the options of the 1997 LSTM kernels, by name")
      .def(py::init([](int64_t cell_size, bool forget_gate, bool output_gate, Squash1997 g, Squash1997 h,
                       Recurrent1997 recurrent, bool truncate) {
             TORCH_CHECK(cell_size > 0, "Options1997: cell_size expected > 0, got ", cell_size);
             TORCH_CHECK(h != Squash1997::logistic, "Options1997: h expected scaled, tanh or identity, got logistic");
             return Options1997{cell_size, forget_gate, output_gate, g, h, recurrent, truncate};
           }),
           py::kw_only(), py::arg("cell_size"), py::arg("forget_gate"), py::arg("output_gate"), py::arg("g"),
           py::arg("h"), py::arg("recurrent"), py::arg("truncate"))
      .def_readonly("cell_size", &Options1997::cell_size)
      .def_readonly("forget_gate", &Options1997::forget_gate)
      .def_readonly("output_gate", &Options1997::output_gate)
      .def_readonly("g", &Options1997::g)
      .def_readonly("h", &Options1997::h)
      .def_readonly("recurrent", &Options1997::recurrent)
      .def_readonly("truncate", &Options1997::truncate);
  m.def("gated_forward", &gated_forward);
  m.def("gated_backward", &gated_backward);
  m.def("layernorm_forward", &layernorm_forward);
  m.def("layernorm_backward", &layernorm_backward);
  m.def("linear_scan_forward", &linear_scan_forward, "h_t = a_t h_{t-1} + b_t over (B, T, H), from h0 (B, H)");
  m.def("linear_scan_backward", &linear_scan_backward);
  m.def("gru_forward", &gru_forward);
  m.def("gru_backward", &gru_backward);
  m.def("elman_forward", &elman_forward);
  m.def("elman_backward", &elman_backward);
  m.def("lstm1997_forward", &lstm1997_forward);
  m.def("lstm1997_backward", &lstm1997_backward);
  m.def("slstm_forward", &slstm_forward);
  m.def("slstm_backward", &slstm_backward);
  m.def("program_ops", &program_ops, "the operations of user cells' programs, by code");
  m.def("program_forward", &program_forward);
  m.def("program_backward", &program_backward);
}
