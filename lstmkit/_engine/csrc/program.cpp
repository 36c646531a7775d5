// The kernels of user-written cells: the engine's recurrence (products, loop, threads, lengths,
// state gradients) around a pointwise step given as a program rather than compiled C++.
//
// lstmkit/_engine/lowering.py turns a cell's pointwise step, and the step's derivative, into a
// list of instructions over one row: each value lives at its own offset in a per-thread arena of
// acc numbers (a slice of a value is the same memory at a further offset, so it costs nothing);
// an instruction applies one operation to whole rows at once (one loop over the row's width that
// the compiler vectorizes), so its dispatch is paid once per row, not once per number. Inputs
// (the products' rows, the states before the step, the cell's vector parameters, the state
// gradients) are read into the arena at their offsets, outputs read back from theirs.
//
// Where a C++ compiler is at hand, lstmkit/_engine/codegen.py also writes the two programs as C++
// row functions (one fused loop over the row's units, every value in a register), compiles and
// caches them; their addresses come in as `row_fn` and run instead of the interpreter (float and
// double; bfloat16 interprets). Both are tested equal to the cell's step.
//
// A cell has S states of H units each; state 0 is its output. The input product zx = x W_ih^T
// (N wide) and each state's own product z_s = s W_s^T (n_s wide, or none) are the driver's; the
// program sees them as they are (biases, if any, are among the parameters it adds itself).

#include "driver.h"
#include "kernels.h"
#include "memory.h"

namespace lstmkit {

namespace {

// The operations, in the order of lowering.py's OPS (checked when the engine loads).
enum Op : int64_t {
  kCopy, kFill, kNeg, kSigmoid, kTanh, kRelu, kExp, kLog, kSqrt, kRsqrt, kAbs, kSin, kCos, kReciprocal, kSign,
  kLog1p, kExpm1, kAdd, kSub, kMul, kDiv, kPow, kMaximum, kMinimum, kGt, kGe, kLt, kLe, kEq, kNe, kSigmoidBackward,
  kTanhBackward, kThresholdBackward, kWhere, kSum, kRoundFloat, kOps
};

const char* const kOpNames[] = {
    "copy", "fill", "neg", "sigmoid", "tanh", "relu", "exp", "log", "sqrt", "rsqrt", "abs", "sin", "cos",
    "reciprocal", "sign", "log1p", "expm1", "add", "sub", "mul", "div", "pow", "maximum", "minimum", "gt", "ge",
    "lt", "le", "eq", "ne", "sigmoid_backward", "tanh_backward", "threshold_backward", "where", "sum", "round_float"};
static_assert(sizeof(kOpNames) / sizeof(kOpNames[0]) == kOps, "one name per operation");

// One instruction: out = op(a, b, c) over `width` numbers; an operand of width 1 is broadcast.
struct Instr {
  int64_t op, out, width, a, aw, b, bw, c, cw;
};

struct Program {
  std::vector<Instr> prologue, body;    // prologue: constants, run once per thread block
  std::vector<double> imm_prologue;
  int64_t arena = 0;
};

Program program_of(const Tensor& code, const Tensor& imm, int64_t arena) {
  TORCH_CHECK(code.dim() == 2 && code.size(1) == 9 && code.scalar_type() == at::kLong, "program: code (n, 9) int64");
  TORCH_CHECK(imm.dim() == 1 && imm.size(0) == code.size(0) && imm.scalar_type() == at::kDouble,
              "program: imm (n,) float64");
  const auto c = code.contiguous();
  const int64_t* p = c.data_ptr<int64_t>();
  const double* v = imm.data_ptr<double>();
  Program prog;
  prog.arena = arena;
  for (int64_t i = 0; i < c.size(0); ++i, p += 9) {
    const Instr in{p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]};
    TORCH_CHECK(in.op >= 0 && in.op < kOps, "program: unknown operation ", in.op);
    for (const int64_t off : {in.out, in.a, in.b, in.c})
      TORCH_CHECK(off >= 0 && off + in.width <= arena, "program: operand outside the arena");
    if (in.op == kFill) {
      prog.prologue.push_back(in);
      prog.imm_prologue.push_back(v[i]);
    } else {
      prog.body.push_back(in);
    }
  }
  return prog;
}

template <typename acc, typename F>
LSTMKIT_INLINE void unary(acc* R, const Instr& in, F f) {
  acc* __restrict__ o = R + in.out;
  const acc* a = R + in.a;
  if (in.aw == 1) { const acc x = f(a[0]); for (int64_t k = 0; k < in.width; ++k) o[k] = x; }
  else { for (int64_t k = 0; k < in.width; ++k) o[k] = f(a[k]); }
}

template <typename acc, typename F>
LSTMKIT_INLINE void binary(acc* R, const Instr& in, F f) {
  acc* __restrict__ o = R + in.out;
  const acc* a = R + in.a;
  const acc* b = R + in.b;
  const int64_t n = in.width;
  if (in.aw == n && in.bw == n) { for (int64_t k = 0; k < n; ++k) o[k] = f(a[k], b[k]); }
  else if (in.aw == n) { const acc y = b[0]; for (int64_t k = 0; k < n; ++k) o[k] = f(a[k], y); }
  else if (in.bw == n) { const acc x = a[0]; for (int64_t k = 0; k < n; ++k) o[k] = f(x, b[k]); }
  else { const acc z = f(a[0], b[0]); for (int64_t k = 0; k < n; ++k) o[k] = z; }
}

template <typename acc, typename F>
LSTMKIT_INLINE void ternary(acc* R, const Instr& in, F f) {
  acc* __restrict__ o = R + in.out;
  const acc* a = R + in.a;
  const acc* b = R + in.b;
  const acc* c = R + in.c;
  const int64_t sa = in.aw > 1, sb = in.bw > 1, sc = in.cw > 1;
  for (int64_t k = 0; k < in.width; ++k) o[k] = f(a[k * sa], b[k * sb], c[k * sc]);
}

template <typename acc>
void run(const std::vector<Instr>& program, acc* R) {
  for (const Instr& in : program) {
    switch (in.op) {
      case kCopy: unary(R, in, [](acc x) { return x; }); break;
      case kNeg: unary(R, in, [](acc x) { return -x; }); break;
      case kSigmoid: unary(R, in, [](acc x) { return sigm<acc>(x); }); break;
      case kTanh: unary(R, in, [](acc x) { return tanh_<acc>(x); }); break;
      case kRelu: unary(R, in, [](acc x) { return x > 0 ? x : acc(0); }); break;
      case kExp: unary(R, in, [](acc x) { return exp_<acc>(x); }); break;
      case kLog: unary(R, in, [](acc x) { return std::log(x); }); break;
      case kSqrt: unary(R, in, [](acc x) { return std::sqrt(x); }); break;
      case kRsqrt: unary(R, in, [](acc x) { return acc(1) / std::sqrt(x); }); break;
      case kAbs: unary(R, in, [](acc x) { return std::abs(x); }); break;
      case kSin: unary(R, in, [](acc x) { return std::sin(x); }); break;
      case kCos: unary(R, in, [](acc x) { return std::cos(x); }); break;
      case kReciprocal: unary(R, in, [](acc x) { return acc(1) / x; }); break;
      case kSign: unary(R, in, [](acc x) { return acc((x > 0) - (x < 0)); }); break;
      case kLog1p: unary(R, in, [](acc x) { return std::log1p(x); }); break;
      case kExpm1: unary(R, in, [](acc x) { return std::expm1(x); }); break;
      case kAdd: binary(R, in, [](acc x, acc y) { return x + y; }); break;
      case kSub: binary(R, in, [](acc x, acc y) { return x - y; }); break;
      case kMul: binary(R, in, [](acc x, acc y) { return x * y; }); break;
      case kDiv: binary(R, in, [](acc x, acc y) { return x / y; }); break;
      case kPow: binary(R, in, [](acc x, acc y) { return std::pow(x, y); }); break;
      case kMaximum: binary(R, in, [](acc x, acc y) { return x != x || x > y ? x : y; }); break;
      case kMinimum: binary(R, in, [](acc x, acc y) { return x != x || x < y ? x : y; }); break;
      case kGt: binary(R, in, [](acc x, acc y) { return acc(x > y); }); break;
      case kGe: binary(R, in, [](acc x, acc y) { return acc(x >= y); }); break;
      case kLt: binary(R, in, [](acc x, acc y) { return acc(x < y); }); break;
      case kLe: binary(R, in, [](acc x, acc y) { return acc(x <= y); }); break;
      case kEq: binary(R, in, [](acc x, acc y) { return acc(x == y); }); break;
      case kNe: binary(R, in, [](acc x, acc y) { return acc(x != y); }); break;
      case kSigmoidBackward: binary(R, in, [](acc g, acc y) { return g * (acc(1) - y) * y; }); break;
      case kTanhBackward: binary(R, in, [](acc g, acc y) { return g * (acc(1) - y * y); }); break;
      case kThresholdBackward:
        ternary(R, in, [](acc g, acc x, acc threshold) { return x <= threshold ? acc(0) : g; });
        break;
      case kWhere: ternary(R, in, [](acc c, acc x, acc y) { return c != acc(0) ? x : y; }); break;
      // a value the step makes in float32 (a Python number times a comparison's result, say) while
      // the run is in float64: rounded as PyTorch's promotion rounds it
      case kRoundFloat: unary(R, in, [](acc x) { return acc(static_cast<float>(x)); }); break;
      case kSum: {
        acc s = 0;
        for (int64_t k = 0; k < in.aw; ++k) s += R[in.a + k];
        R[in.out] = s;
        break;
      }
      default: break;
    }
  }
}

// What a row reads into the arena and writes back: (offset, width, where) per operand.
template <typename acc, typename S>
LSTMKIT_INLINE void load(acc* R, int64_t off, int64_t n, const S* src) {
  for (int64_t k = 0; k < n; ++k) R[off + k] = acc(src[k]);
}

template <typename acc, typename S>
LSTMKIT_INLINE void store(const acc* R, int64_t off, int64_t n, S* dst) {
  for (int64_t k = 0; k < n; ++k) dst[k] = S(R[off + k]);
}

// The per-block arena: the program's constants and the cell's vector parameters, once, on a
// block's first row (a flag in the arena's last slot says whether that was done).
template <typename acc>
LSTMKIT_INLINE void prepare(acc* R, const Program& prog, const std::vector<std::vector<acc>>& params,
                            const int64_t* param_off) {
  if (R[prog.arena] != acc(0)) return;
  for (size_t i = 0; i < prog.prologue.size(); ++i) {
    const Instr& in = prog.prologue[i];
    std::fill_n(R + in.out, in.width, acc(prog.imm_prologue[i]));
  }
  for (size_t p = 0; p < params.size(); ++p) std::copy(params[p].begin(), params[p].end(), R + param_off[p]);
  R[prog.arena] = acc(1);
}

std::vector<int64_t> offsets(const Tensor& t) {
  const auto c = t.contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

template <typename acc, typename scalar_t>
std::vector<std::vector<acc>> params_acc(const std::vector<Tensor>& params) {
  std::vector<std::vector<acc>> v;
  for (const auto& p : params) v.push_back(as_acc<acc, scalar_t>(p.contiguous(), p.numel()));
  return v;
}

// A compiled row function's arguments: the inputs' rows, the outputs' rows (and, backward, the
// block's parameter-gradient sums), in the layouts' order.
constexpr int64_t kMaxOperands = 64;
template <typename T>
using ForwardRow = void (*)(const T* const* in, T* const* out);
template <typename T>
using BackwardRow = void (*)(const T* const* in, T* const* out, T* sums);

// A row's pointer as the compiled function takes it: only called where acc is the row's own type.
template <typename acc, typename S>
LSTMKIT_INLINE acc* as_acc_ptr(S* p) { return reinterpret_cast<acc*>(p); }
template <typename acc, typename S>
LSTMKIT_INLINE const acc* as_acc_ptr(const S* p) { return reinterpret_cast<const acc*>(p); }

void check_operands(int64_t n) {
  TORCH_CHECK(n <= kMaxOperands, "program: at most ", kMaxOperands, " inputs and outputs, got ", n);
}

}  // namespace

std::vector<std::string> program_ops() { return std::vector<std::string>(kOpNames, kOpNames + kOps); }

// x (B, T, I); w_ih (N, I); w_s[s] (n_s, H) or empty; params: the vector parameters; h0[s] (B, H).
// layout_in: arena offsets of zx, z_s (S), the states before the step (S), the parameters;
// layout_out: of the new states (S). Returns the state sequences (S; state 0 with every step,
// the others every step when save, else the last), then, when save, zx (B, T, N) and each z_s.
std::vector<Tensor> program_forward(const Tensor& x, const Tensor& w_ih, const std::vector<Tensor>& w_s,
                                    const std::vector<Tensor>& params, const std::vector<Tensor>& h0,
                                    const Tensor& lengths, const Tensor& code, const Tensor& imm, int64_t arena,
                                    const Tensor& layout_in, const Tensor& layout_out, int64_t row_fn, bool save) {
  const int64_t B = x.size(0), T = x.size(1), I = x.size(2), N = w_ih.size(0), S = h0.size(), H = h0[0].size(1);
  const auto prog = program_of(code, imm, arena);
  const auto in_off = offsets(layout_in), out_off = offsets(layout_out);
  TORCH_CHECK(static_cast<int64_t>(w_s.size()) == S && static_cast<int64_t>(in_off.size()) == 1 + 2 * S +
              static_cast<int64_t>(params.size()) && static_cast<int64_t>(out_off.size()) == S,
              "program_forward: layout does not match the states and parameters");
  std::vector<Tensor> states, Zs, saved;
  for (int64_t s = 0; s < S; ++s) states.push_back(big_empty({B, s == 0 || save ? T : 1, H}, x.options(), save));
  auto Zx = at::empty({B, N}, x.options());
  for (int64_t s = 0; s < S; ++s) Zs.push_back(at::empty({B, has(w_s[s]) ? w_s[s].size(0) : 0}, x.options()));
  if (save) {
    saved.push_back(big_empty({B, T, N}, x.options()));
    for (int64_t s = 0; s < S; ++s) saved.push_back(big_empty({B, T, Zs[s].size(1)}, x.options()));
  }
  std::vector<Tensor> W;
  for (const auto& w : w_s) W.push_back(w.contiguous());
  const auto WI = w_ih.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "program_forward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const auto P = params_acc<acc, scalar_t>(params);
    std::vector<Sequence<scalar_t>> seq;
    std::vector<Feedback<scalar_t>> feedback;
    for (int64_t s = 0; s < S; ++s) {
      seq.push_back(s == 0 ? sequence_of<scalar_t>(states[0], h0[0])
                           : Sequence<scalar_t>::saved(states[s].data_ptr<scalar_t>(), save, T, H));
      seq[s].init = h0[s].data_ptr<scalar_t>();
      const int64_t n = Zs[s].size(1);
      feedback.push_back({seq[s], n ? W[s].data_ptr<scalar_t>() : nullptr, n,
                          n ? Zs[s].data_ptr<scalar_t>() : nullptr});
    }
    scalar_t* zx = Zx.data_ptr<scalar_t>();
    check_operands(1 + 2 * S + static_cast<int64_t>(P.size()));
    const Recurrence<scalar_t> rec{B, T, rows_of(lengths), I, N, WI.data_ptr<scalar_t>(),
                                   std::max(arena + 1, S * H)};
    rec.forward(sequence_of<const scalar_t>(x), zx, feedback,
                [&](int64_t b, int64_t t, acc* R) {
                  if (save) std::copy_n(zx + b * N, N, saved[0].data_ptr<scalar_t>() + (b * T + t) * N);
                  if (std::is_same_v<acc, scalar_t> && row_fn) {     // compiled: reads and writes in place
                    const acc* in[kMaxOperands];
                    acc* out[kMaxOperands];
                    in[0] = as_acc_ptr<acc>(zx + b * N);
                    for (int64_t s = 0; s < S; ++s) {
                      const auto& f = feedback[s];
                      in[1 + s] = f.n ? as_acc_ptr<acc>(f.z + b * f.n) : nullptr;
                      in[1 + S + s] = as_acc_ptr<acc>(f.state.before(b, t));
                      out[s] = R + s * H;            // a state kept one step overwrites its input: not in place
                      if (save && f.n)
                        std::copy_n(f.z + b * f.n, f.n, saved[1 + s].data_ptr<scalar_t>() + (b * T + t) * f.n);
                    }
                    for (size_t p = 0; p < P.size(); ++p) in[1 + 2 * S + p] = P[p].data();
                    reinterpret_cast<ForwardRow<acc>>(row_fn)(in, out);
                    for (int64_t s = 0; s < S; ++s) std::copy_n(R + s * H, H, seq[s].at(b, t));
                    return;
                  }
                  prepare(R, prog, P, in_off.data() + 1 + 2 * S);
                  load(R, in_off[0], N, zx + b * N);
                  for (int64_t s = 0; s < S; ++s) {
                    const auto& f = feedback[s];
                    if (f.n) {
                      load(R, in_off[1 + s], f.n, f.z + b * f.n);
                      if (save)
                        std::copy_n(f.z + b * f.n, f.n, saved[1 + s].data_ptr<scalar_t>() + (b * T + t) * f.n);
                    }
                    load(R, in_off[1 + S + s], H, f.state.before(b, t));
                  }
                  run(prog.body, R);
                  for (int64_t s = 0; s < S; ++s) store(R, out_off[s], H, seq[s].at(b, t));
                },
                [](int64_t, int64_t) {});
  });
  std::vector<Tensor> out = states;
  out.insert(out.end(), saved.begin(), saved.end());
  return out;
}

// The backward of program_forward. dY (B, T, H) or empty; dfinal[s] (B, H) or empty; states: the
// forward's state sequences (every step); saved: its zx and z_s. layout_in: offsets of zx, z_s
// (S), the states before the step (S), the parameters, the new states' gradients (S);
// layout_out: of the gradients of zx, z_s (S), the states before the step (S), the parameters.
// Returns dx, dw_ih, dw_s (S), dparams, dh0 (S).
std::vector<Tensor> program_backward(const Tensor& dY, const std::vector<Tensor>& dfinal, const Tensor& x,
                                     const Tensor& w_ih, const std::vector<Tensor>& w_s,
                                     const std::vector<Tensor>& params, const std::vector<Tensor>& h0,
                                     const std::vector<Tensor>& states, const std::vector<Tensor>& saved,
                                     const Tensor& lengths, const Tensor& code, const Tensor& imm, int64_t arena,
                                     const Tensor& layout_in, const Tensor& layout_out, int64_t row_fn,
                                     bool need_dx) {
  const int64_t B = x.size(0), T = x.size(1), I = x.size(2), N = w_ih.size(0), S = h0.size(), H = h0[0].size(1);
  const auto prog = program_of(code, imm, arena);
  const auto in_off = offsets(layout_in), out_off = offsets(layout_out);
  const int64_t n_params = params.size();
  TORCH_CHECK(static_cast<int64_t>(in_off.size()) == 1 + 3 * S + n_params &&
              static_cast<int64_t>(out_off.size()) == 1 + 2 * S + n_params,
              "program_backward: layout does not match the states and parameters");
  std::vector<int64_t> param_at(n_params + 1, 0);      // each parameter's place in the block sums
  for (int64_t p = 0; p < n_params; ++p) param_at[p + 1] = param_at[p] + params[p].numel();
  auto dZx = big_empty({B, T, N}, x.options());
  auto dX = need_dx ? big_empty({B, T, I}, x.options()) : Tensor();
  std::vector<Tensor> dZ, dstate, tmp, W;
  for (int64_t s = 0; s < S; ++s) {
    const int64_t n = has(w_s[s]) ? w_s[s].size(0) : 0;
    dZ.push_back(big_empty({B, T, n}, x.options()));
    dstate.push_back(zeros_like_or(dfinal[s], h0[s]).clone());
    tmp.push_back(at::empty({B, H}, x.options()));
    W.push_back(w_s[s].contiguous());
  }
  const auto WI = w_ih.contiguous();
  BlockSums<double> sums(B, param_at[n_params]);
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "program_backward", [&] {
    using acc = at::opmath_type<scalar_t>;
    const auto P = params_acc<acc, scalar_t>(params);
    std::vector<Sequence<const scalar_t>> seq, zs;
    std::vector<FeedbackGrad<scalar_t>> feedback;
    for (int64_t s = 0; s < S; ++s) {
      seq.push_back(sequence_of<const scalar_t>(states[s], h0[s]));
      zs.push_back(sequence_of<const scalar_t>(saved[1 + s]));
      const bool product = dZ[s].size(2) > 0;
      feedback.push_back({sequence_of<scalar_t>(dZ[s]), product ? W[s].data_ptr<scalar_t>() : nullptr, H,
                          dstate[s].data_ptr<scalar_t>(), tmp[s].data_ptr<scalar_t>(), true});
    }
    const auto zx = sequence_of<const scalar_t>(saved[0]);
    const auto dzx = sequence_of<scalar_t>(dZx);
    check_operands(1 + 3 * S + n_params);
    const Recurrence<scalar_t> rec{B, T, rows_of(lengths), I, N, WI.data_ptr<scalar_t>(), arena + 1};
    rec.backward(has(dY) ? sequence_of<const scalar_t>(dY) : Sequence<const scalar_t>{}, dzx,
                 need_dx ? sequence_of<scalar_t>(dX) : Sequence<scalar_t>{}, feedback, sums,
                 [&](int64_t b, int64_t t, acc* R, acc* sum) {
                   if (std::is_same_v<acc, scalar_t> && row_fn) {
                     const acc* in[kMaxOperands];
                     acc* out[kMaxOperands];
                     in[0] = as_acc_ptr<acc>(zx.at(b, t));
                     out[0] = as_acc_ptr<acc>(dzx.at(b, t));
                     for (int64_t s = 0; s < S; ++s) {
                       const auto& f = feedback[s];
                       in[1 + s] = zs[s].width ? as_acc_ptr<acc>(zs[s].at(b, t)) : nullptr;
                       in[1 + S + s] = as_acc_ptr<acc>(seq[s].before(b, t));
                       in[1 + 2 * S + n_params + s] = as_acc_ptr<acc>(f.dstate + b * H);
                       out[1 + s] = f.dz.width ? as_acc_ptr<acc>(f.dz.at(b, t)) : nullptr;
                       out[1 + S + s] = as_acc_ptr<acc>(f.tmp + b * H);
                     }
                     for (int64_t p = 0; p < n_params; ++p) in[1 + 2 * S + p] = P[p].data();
                     reinterpret_cast<BackwardRow<acc>>(row_fn)(in, out, sum);
                     return;
                   }
                   prepare(R, prog, P, in_off.data() + 1 + 2 * S);
                   load(R, in_off[0], N, zx.at(b, t));
                   for (int64_t s = 0; s < S; ++s) {
                     if (zs[s].width) load(R, in_off[1 + s], zs[s].width, zs[s].at(b, t));
                     load(R, in_off[1 + S + s], H, seq[s].before(b, t));
                     load(R, in_off[1 + 2 * S + n_params + s], H, feedback[s].dstate + b * H);
                   }
                   run(prog.body, R);
                   store(R, out_off[0], N, dzx.at(b, t));
                   for (int64_t s = 0; s < S; ++s) {
                     const auto& f = feedback[s];
                     if (f.dz.width) store(R, out_off[1 + s], f.dz.width, f.dz.at(b, t));
                     store(R, out_off[1 + S + s], H, f.tmp + b * H);
                   }
                   for (int64_t p = 0; p < n_params; ++p)
                     for (int64_t k = 0; k < param_at[p + 1] - param_at[p]; ++k)
                       sum[param_at[p] + k] += R[out_off[1 + 2 * S + p] + k];
                 });
  });
  std::vector<Tensor> out{dX, weight_grad(dZx.view({B * T, N}), x.reshape({B * T, I}))};
  for (int64_t s = 0; s < S; ++s)
    out.push_back(dZ[s].size(2) ? grad_through_states(dZ[s], h0[s], states[s]) : Tensor());
  const auto total = sums.total(x.options());
  for (int64_t p = 0; p < n_params; ++p)
    out.push_back(total.narrow(0, param_at[p], param_at[p + 1] - param_at[p]).reshape(params[p].sizes()));
  out.insert(out.end(), dstate.begin(), dstate.end());
  return out;
}

}  // namespace lstmkit
