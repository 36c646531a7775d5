// The recurrence that the kernels share: the batch split into thread blocks, the weights packed
// once per block, each step's products, the valid-row test under lengths, states carried past a
// row's length, and, backward, the gradients of the recurrent states. A kernel supplies only its
// pointwise step: forward, one row of one step from its pre-activations; backward, one row's
// gradients of the pre-activations (and the bias and gain sums) from the state's gradient.

#pragma once

#include <vector>

#include "common.h"
#include "gemm.h"
#include "sequences.h"
#include "threads.h"

namespace lstmkit {

// A batch-first sequence (B, steps, width): row b at step t, and the state before step t (init
// (B, width) before step 0). A buffer that keeps only the step at hand (activations not saved for
// a backward) has step stride 0.
template <typename T>
struct Sequence {
  T* data = nullptr;
  const T* init = nullptr;
  int64_t width = 0, row = 0, step = 0;   // strides between rows and between steps

  static Sequence of(T* data, int64_t steps, int64_t width, const T* init = nullptr) {
    return {data, init, width, steps * width, width};
  }
  // every step when save, else only the step at hand
  static Sequence saved(T* data, bool save, int64_t steps, int64_t width) {
    return save ? of(data, steps, width) : Sequence{data, nullptr, width, width, 0};
  }
  T* at(int64_t b, int64_t t) const { return data + b * row + t * step; }
  const T* before(int64_t b, int64_t t) const { return t ? at(b, t - 1) : init + b * width; }
  int64_t row_before(int64_t t) const { return t ? row : width; }
};

template <typename T>
Sequence<T> sequence_of(const Tensor& t, const Tensor& init = Tensor()) {
  using S = std::remove_const_t<T>;
  const T* i = has(init) ? init.data_ptr<S>() : nullptr;
  return Sequence<T>::of(t.data_ptr<S>(), t.size(1), t.size(2), i);
}

// Forward: one recurrent product per step, z (B, n) = state_{t-1} W^T, W (n, state width), added
// to z when z is the input product's buffer. w == nullptr: no product.
template <typename T>
struct Feedback {
  Sequence<T> state;
  const T* w = nullptr;
  int64_t n = 0;
  T* z = nullptr;
};

// Backward: the state's gradient carried back, dstate (B, u) = dz_t W (W (n, u)) for the rows
// valid at step t, dz (B, T, n) written by the kernel's rows; w == nullptr: no gradient flows
// through a product into the previous state (it becomes the rows' direct term when direct, else
// zero, at every valid step).
template <typename T>
struct FeedbackGrad {
  Sequence<T> dz;
  const T* w = nullptr;
  int64_t u = 0;
  T* dstate = nullptr;
  T* tmp = nullptr;           // (B, u) scratch
  bool direct = false;        // the rows write a direct term of dstate into tmp; the product adds to it
};

template <typename scalar_t>
struct Recurrence {
  using acc = at::opmath_type<scalar_t>;
  int64_t B, T;
  Rows rows;
  int64_t I, N;                 // input width, pre-activation width
  const scalar_t* w_ih;         // (N, I); backward: nullptr when no input gradient is wanted
  int64_t scratch = 0;          // acc values per block for the kernel's rows

  // row(b, t, scratch): step t of row b from its pre-activations (the input's product in z and
  // each feedback's); carry(b, t): the kernel's other states past row b's length (the feedback
  // states are carried here).
  template <typename Row, typename Carry>
  void forward(Sequence<const scalar_t> x, scalar_t* z, const std::vector<Feedback<scalar_t>>& feedback, const Row& row,
               const Carry& carry) const {
    int64_t w = N * I;                                 // multiply-adds per row and step
    for (const auto& f : feedback) w += f.n * f.state.width;
    for_batch_blocks(B, T * w, [&](int64_t b0, int64_t b1) {
      const int64_t M = b1 - b0;
      const PackedWeight<scalar_t> Wx(true, M, N, I, w_ih, I, T);
      std::vector<PackedWeight<scalar_t>> Wf;
      Wf.reserve(feedback.size());
      for (const auto& f : feedback) Wf.emplace_back(true, M, f.n, f.state.width, f.w, f.state.width, T);
      std::vector<acc> sc(scratch);
      for (int64_t t = 0; t < T; ++t) {
        Wx.product(x.at(b0, t), x.row, 0.0, z + b0 * N, N);
        for (size_t i = 0; i < feedback.size(); ++i) {
          const auto& f = feedback[i];
          if (f.w) Wf[i].product(f.state.before(b0, t), f.state.row_before(t), f.z == z ? 1.0 : 0.0, f.z + b0 * f.n, f.n);
        }
        for (int64_t b = b0; b < b1; ++b) {
          if (rows.valid(b, t)) { row(b, t, sc.data()); continue; }
          for (const auto& f : feedback)
            std::memcpy(f.state.at(b, t), f.state.before(b, t), f.state.width * sizeof(scalar_t));
          carry(b, t);
        }
      }
    });
  }

  // row(b, t, scratch, sums): the gradients of row b's pre-activations at step t, into dzx (the
  // input's product) and each feedback's dz, from feedback[0].dstate (dY added to it first) and the
  // kernel's other state gradients, which it carries back itself; sums: the block's partial sums.
  // Rows past their length get zero gate gradients and keep their state gradients. dx (B, T, I):
  // the input's gradient, one product per step (nullptr: none).
  template <typename Row>
  void backward(Sequence<const scalar_t> dY, Sequence<scalar_t> dzx, Sequence<scalar_t> dx,
                const std::vector<FeedbackGrad<scalar_t>>& feedback, BlockSums<double>& sums, const Row& row) const {
    int64_t w = N * I;
    for (const auto& f : feedback) w += f.dz.width * f.u;
    for_batch_blocks(B, T * w, [&](int64_t b0, int64_t b1) {
      const int64_t M = b1 - b0;
      const PackedWeight<scalar_t> Wx(false, M, I, N, dx.data ? w_ih : nullptr, I, T);
      std::vector<PackedWeight<scalar_t>> Wf;
      Wf.reserve(feedback.size());
      for (const auto& f : feedback) Wf.emplace_back(false, M, f.u, f.dz.width, f.w, f.u, T);
      std::vector<acc> sc(scratch), sum(sums.n, acc(0));
      const int64_t U = feedback[0].u;
      for (int64_t t = T - 1; t >= 0; --t) {
        for (int64_t b = b0; b < b1; ++b) {
          if (dY.data) add_row<acc>(U, dY.at(b, t), feedback[0].dstate + b * U);
          if (rows.valid(b, t)) { row(b, t, sc.data(), sum.data()); continue; }
          std::fill_n(dzx.at(b, t), N, scalar_t(0));
          for (const auto& f : feedback) std::fill_n(f.dz.at(b, t), f.dz.width, scalar_t(0));
        }
        if (dx.data) Wx.product(dzx.at(b0, t), dzx.row, 0.0, dx.at(b0, t), dx.row);
        for (size_t i = 0; i < feedback.size(); ++i) {
          const auto& f = feedback[i];
          if (f.w) {
            Wf[i].product(f.dz.at(b0, t), f.dz.row, f.direct ? 1.0 : 0.0, f.tmp + b0 * f.u, f.u);
            take_valid_rows(rows, t, b0, b1, f.dstate, f.tmp, f.u);
          } else if (f.direct) {
            take_valid_rows(rows, t, b0, b1, f.dstate, f.tmp, f.u);
          } else {
            for (int64_t b = b0; b < b1; ++b)
              if (rows.valid(b, t)) std::fill_n(f.dstate + b * f.u, f.u, scalar_t(0));
          }
        }
      }
      sums.put(b0, sum);
    });
  }
};

}  // namespace lstmkit
