// The cell options each kernel family takes, as named fields (Python builds them by keyword, so
// no option can land in another's place).

#pragma once

#include <cstdint>

namespace lstmkit {

// lstm, peephole and Greff's variants. Gates with their own parameters among (i, f, o), the
// candidate g always; coupled: f = 1 - i (CIFG) instead of its own gate.
struct GatedOptions {
  bool input_gate = true, forget_gate = true, coupled = false, output_gate = true;
  bool identity_g = false;          // g = its pre-activation (NIAF) instead of tanh
  bool identity_h = false;          // y = o * c (NOAF) instead of o * tanh(c)
  bool peepholes = false;           // i, f read c_{t-1}; o reads c_t
  bool gate_recurrence = false;     // the gates' previous activations feed all gates (FGR)
};

// The squashing of the 1997 cell's input (g) and output (h), and where its recurrence reads from.
enum class Squash1997 : int64_t { scaled = 0, logistic = 1, tanh = 2, identity = 3 };
enum class Recurrent1997 : int64_t { all = 0, cells = 1, none = 2 };

struct Options1997 {
  int64_t cell_size = 1;            // cells per memory block (they share the block's gates)
  bool forget_gate = false, output_gate = true;
  Squash1997 g = Squash1997::scaled;       // scaled: 4 sigm - 2; logistic; tanh; identity
  Squash1997 h = Squash1997::scaled;       // scaled: 2 sigm - 1; tanh; identity (logistic is not one)
  Recurrent1997 recurrent = Recurrent1997::all;
  bool truncate = false;            // the paper's truncated gradient: none through the recurrence
};

}  // namespace lstmkit
