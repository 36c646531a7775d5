// Memory: whole-sequence buffers as huge-page mappings, and the cache that keeps freed ones
// for the next call.

#pragma once

#include "common.h"

namespace lstmkit {

#if defined(__linux__) && defined(MADV_HUGEPAGE)
constexpr size_t kHugePage = size_t(2) << 20;

// Freed whole-sequence mappings, kept for the next call instead of going back to the kernel: a
// training loop allocates the same buffers at every step, and a fresh mapping costs page faults
// and the kernel's zeroing of every page, then writes that miss every cache (docs/performance.md).
// Holds at most `capacity` bytes (LSTMKIT_ENGINE_CACHE_MB, default 1024; 0 turns it off), oldest
// first out; empty_cache() hands everything back. Never destroyed: tensors may be freed during
// interpreter teardown.
class MappingCache {
 public:
  struct Mapping { void* base; size_t length; };

  static MappingCache& get() {
    static auto* cache = new MappingCache();
    return *cache;
  }
  // A cached mapping of at least `length` bytes and at most a quarter (plus a page) more, the
  // smallest such; {nullptr, 0} if none.
  Mapping take(size_t length) {
    std::lock_guard<std::mutex> lock(mu_);
    size_t best = free_.size();
    for (size_t i = 0; i < free_.size(); ++i) {
      const size_t n = free_[i].length;
      if (n >= length && n <= length + length / 4 + kHugePage && (best == free_.size() || n < free_[best].length))
        best = i;
    }
    if (best == free_.size()) return {nullptr, 0};
    const Mapping m = free_[best];
    free_.erase(free_.begin() + best);
    cached_ -= m.length;
    return m;
  }
  void give(Mapping m) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (m.length <= capacity_) {
        free_.push_back(m);
        cached_ += m.length;
        m = {nullptr, 0};
      }
    }
    if (m.base) munmap(m.base, m.length);     // bigger than the whole cache: straight back
    trim();
  }
  // Sets the capacity in bytes (n >= 0), evicting what no longer fits; returns the previous one.
  int64_t set_capacity(int64_t n) {
    int64_t previous;
    {
      std::lock_guard<std::mutex> lock(mu_);
      previous = static_cast<int64_t>(capacity_);
      if (n >= 0) capacity_ = static_cast<size_t>(n);
    }
    trim();
    return previous;
  }
  // Hands every cached mapping back to the kernel; returns the bytes released.
  int64_t empty() {
    std::vector<Mapping> out;
    {
      std::lock_guard<std::mutex> lock(mu_);
      out.swap(free_);
      cached_ = 0;
    }
    int64_t bytes = 0;
    for (const auto& e : out) { munmap(e.base, e.length); bytes += static_cast<int64_t>(e.length); }
    return bytes;
  }
  std::vector<int64_t> info() {
    std::lock_guard<std::mutex> lock(mu_);
    return {static_cast<int64_t>(free_.size()), static_cast<int64_t>(cached_), static_cast<int64_t>(capacity_)};
  }

 private:
  MappingCache() {
    const char* env = std::getenv("LSTMKIT_ENGINE_CACHE_MB");
    const long mb = env ? std::strtol(env, nullptr, 10) : 1024;
    capacity_ = static_cast<size_t>(std::max(0L, mb)) << 20;
  }
  // Hands back the oldest mappings until the cache fits its capacity.
  void trim() {
    std::vector<Mapping> out;
    {
      std::lock_guard<std::mutex> lock(mu_);
      while (cached_ > capacity_) {
        out.push_back(free_.front());
        cached_ -= free_.front().length;
        free_.erase(free_.begin());
      }
    }
    for (const auto& e : out) munmap(e.base, e.length);
  }
  std::mutex mu_;
  std::vector<Mapping> free_;     // oldest first
  size_t cached_ = 0, capacity_ = 0;
};
#endif

// The engine's memory cache, for Python: [mappings, bytes, capacity]; set_cache_capacity(n >= 0)
// sets the capacity in bytes and returns the previous one; empty_cache() hands the cached
// mappings back and returns the bytes released.
inline std::vector<int64_t> cache_info() {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  return MappingCache::get().info();
#else
  return {0, 0, 0};
#endif
}

inline int64_t set_cache_capacity(int64_t n) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  return MappingCache::get().set_capacity(n);
#else
  return 0;
#endif
}

inline int64_t empty_cache() {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  return MappingCache::get().empty();
#else
  return 0;
#endif
}

// A tensor for one of a call's whole-sequence buffers (saved activations, gate gradients). A
// buffer of 4 MiB or more is its own mapping, 2 MiB-aligned and marked for transparent huge pages
// (what PyTorch does for every allocation under THP_MEM_ALLOC_ENABLE=1), so that it faults in 2
// MiB at a time rather than 4 KiB (glibc hands such blocks straight back to the kernel when a call
// frees them, and faulting fresh pages in is a measurable share of a step). When the tensor is
// freed its mapping goes to the MappingCache, from which the next call's buffers are taken. Like
// at::empty, the memory is filled with NaN when torch is asked to fill uninitialised memory.
// Elsewhere, or if mapping fails: at::empty. huge = false (a forward pass that saves nothing):
// at::empty, whose freed blocks glibc does reuse when a call frees them at once.
inline Tensor big_empty(at::IntArrayRef sizes, const at::TensorOptions& options, bool huge = true) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  int64_t numel = 1;
  for (auto n : sizes) numel *= n;
  const size_t bytes = size_t(numel) * options.dtype().itemsize();
  if (huge && options.device().is_cpu() && bytes >= 2 * kHugePage) {
    const size_t length = (bytes + kHugePage - 1) / kHugePage * kHugePage + kHugePage;     // room to align
    auto& cache = MappingCache::get();
    MappingCache::Mapping m = cache.take(length);
    if (!m.base) {
      void* base = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (base != MAP_FAILED) {
        m = {base, length};
        madvise(base, length, MADV_HUGEPAGE);
      }
    }
    if (m.base) {
      auto aligned = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(m.base) + kHugePage - 1) & ~(kHugePage - 1));
      auto out = at::from_blob(aligned, sizes, [m](void*) { MappingCache::get().give(m); }, options);
      auto& ctx = at::globalContext();
      if (ctx.deterministicAlgorithms() && ctx.deterministicFillUninitializedMemory()) {
        out.fill_(std::numeric_limits<double>::quiet_NaN());
      }
      return out;
    }
  }
#endif
  return at::empty(sizes, options);
}

}  // namespace lstmkit
