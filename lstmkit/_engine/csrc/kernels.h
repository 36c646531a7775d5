// The kernels' entry points, one forward and one backward per cell family; bindings.cpp exposes
// them to Python (lstmkit/_engine/kernels.py holds the adapter of each family).

#pragma once

#include <string>
#include <vector>

#include "common.h"
#include "options.h"

namespace lstmkit {

std::vector<Tensor> gated_forward(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& p_i,
                                  const Tensor& p_f, const Tensor& p_o, const Tensor& w_gg, const Tensor& bias,
                                  const Tensor& h0, const Tensor& c0, const Tensor& a0, const Tensor& lengths,
                                  const GatedOptions& options, bool save);
std::vector<Tensor> gated_backward(const Tensor& dY, const Tensor& dhT, const Tensor& dcT, const Tensor& daT,
                                   const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& p_i,
                                   const Tensor& p_f, const Tensor& p_o, const Tensor& w_gg, const Tensor& bias,
                                   const Tensor& h0, const Tensor& c0, const Tensor& a0, const Tensor& Y,
                                   const Tensor& C, const Tensor& A, const Tensor& Gates, const Tensor& lengths,
                                   const GatedOptions& options, bool need_dx);
std::vector<Tensor> layernorm_forward(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& bias,
                                      const Tensor& gamma_ih, const Tensor& gamma_hh, const Tensor& gamma_c,
                                      const Tensor& beta_c, const Tensor& h0, const Tensor& c0,
                                      const Tensor& lengths, double eps_, bool save);
std::vector<Tensor> layernorm_backward(const Tensor& dY, const Tensor& dhT, const Tensor& dcT, const Tensor& x,
                                       const Tensor& w_ih, const Tensor& w_hh, const Tensor& bias,
                                       const Tensor& gamma_ih, const Tensor& gamma_hh, const Tensor& gamma_c,
                                       const Tensor& beta_c, const Tensor& h0, const Tensor& c0, const Tensor& Y,
                                       const Tensor& C, const Tensor& Gates, const Tensor& Xhat, const Tensor& Rhat,
                                       const Tensor& Chat, const Tensor& Rstd, const Tensor& lengths, bool need_dx);
std::vector<Tensor> gru_forward(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_x,
                                const Tensor& b_hh, const Tensor& h0, const Tensor& lengths, bool reset_after,
                                bool save);
std::vector<Tensor> gru_backward(const Tensor& dY, const Tensor& dhT, const Tensor& x, const Tensor& w_ih,
                                 const Tensor& w_hh, const Tensor& b_x, const Tensor& b_hh, const Tensor& h0,
                                 const Tensor& Y, const Tensor& Gates, const Tensor& Aux, const Tensor& lengths,
                                 bool reset_after, bool need_dx);
std::vector<Tensor> elman_forward(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& bias,
                                  const Tensor& h0, const Tensor& lengths, int64_t act, bool save);
std::vector<Tensor> elman_backward(const Tensor& dY, const Tensor& dhT, const Tensor& x, const Tensor& w_ih,
                                   const Tensor& w_hh, const Tensor& bias, const Tensor& h0, const Tensor& Y,
                                   const Tensor& lengths, int64_t act, bool need_dx);
std::vector<Tensor> lstm1997_forward(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& bias,
                                     const Tensor& u0, const Tensor& s0, const Tensor& lengths,
                                     const Options1997& options, bool save);
std::vector<Tensor> lstm1997_backward(const Tensor& dY, const Tensor& duT, const Tensor& dsT, const Tensor& x,
                                      const Tensor& w_ih, const Tensor& w_hh, const Tensor& bias, const Tensor& u0,
                                      const Tensor& s0, const Tensor& Us, const Tensor& Ss, const Tensor& Gates,
                                      const Tensor& lengths, const Options1997& options, bool need_dx);
std::vector<Tensor> slstm_forward(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const Tensor& bias,
                                  const Tensor& h0, const Tensor& c0, const Tensor& n0, const Tensor& m0,
                                  const Tensor& lengths, bool exp_forget, bool save);
std::vector<Tensor> slstm_backward(const Tensor& dY, const Tensor& dhT, const Tensor& dcT, const Tensor& dnT,
                                   const Tensor& dmT, const Tensor& x, const Tensor& w_ih, const Tensor& w_hh,
                                   const Tensor& bias, const Tensor& h0, const Tensor& c0, const Tensor& n0,
                                   const Tensor& m0, const Tensor& Y, const Tensor& C, const Tensor& N,
                                   const Tensor& M, const Tensor& Pre, const Tensor& lengths, bool exp_forget,
                                   bool need_dx);

// user-written cells: the recurrence around a pointwise program (program.cpp)
std::vector<std::string> program_ops();
std::vector<Tensor> program_forward(const Tensor& x, const Tensor& w_ih, const std::vector<Tensor>& w_s,
                                    const std::vector<Tensor>& params, const std::vector<Tensor>& h0,
                                    const Tensor& lengths, const Tensor& code, const Tensor& imm, int64_t arena,
                                    const Tensor& layout_in, const Tensor& layout_out, int64_t row_fn, bool save);
std::vector<Tensor> program_backward(const Tensor& dY, const std::vector<Tensor>& dfinal, const Tensor& x,
                                     const Tensor& w_ih, const std::vector<Tensor>& w_s,
                                     const std::vector<Tensor>& params, const std::vector<Tensor>& h0,
                                     const std::vector<Tensor>& states, const std::vector<Tensor>& saved,
                                     const Tensor& lengths, const Tensor& code, const Tensor& imm, int64_t arena,
                                     const Tensor& layout_in, const Tensor& layout_out, int64_t row_fn,
                                     bool need_dx);

// the linear recurrence h_t = a_t h_{t-1} + b_t of the minimal RNNs (scan.cpp)
Tensor linear_scan_forward(Tensor a, Tensor b, Tensor h0);
std::vector<Tensor> linear_scan_backward(Tensor a, Tensor h0, Tensor h, Tensor dh, Tensor dfinal);

}  // namespace lstmkit
