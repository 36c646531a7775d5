// Threads: the batch split into one block of rows per thread.

#pragma once

#include "common.h"

namespace lstmkit {

// Split the batch into one block of rows per thread; f(b0, b1) runs the whole recurrence for rows
// [b0, b1) (rows never interact), so threads meet once per call, not at every step. A problem too
// small to pay for starting a thread runs in one block: work_per_row is the multiply-adds of one
// row over the whole call. Inside f, BLAS runs single-threaded (MKL does so within a parallel
// region). min_block_work: the multiply-adds per block below which a second thread costs more
// than it saves; block_work() changes it (the tests split tiny batches).
inline int64_t min_block_work = 1 << 20;

inline int64_t block_work(int64_t n) {
  const int64_t previous = min_block_work;
  if (n > 0) min_block_work = n;
  return previous;
}

template <typename F>
inline void for_batch_blocks(int64_t B, int64_t work_per_row, const F& f) {
  const int64_t threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>({threads, B, B * work_per_row / min_block_work}));
  if (blocks == 1) {
    // one block: BLAS on one thread too, where the problem is too small to share
    const bool small = threads > 1 && B * work_per_row < threads * min_block_work;
    const int previous = small && MKL_Set_Num_Threads_Local ? MKL_Set_Num_Threads_Local(1) : -1;
    f(0, B);
    if (previous >= 0) MKL_Set_Num_Threads_Local(previous);
    return;
  }
  at::parallel_for(0, B, (B + blocks - 1) / blocks, f);
}

}  // namespace lstmkit
