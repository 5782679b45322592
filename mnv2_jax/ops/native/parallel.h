// Shared by the native kernels: run row chunks on XLA's intra-op thread pool.
//
// The calling thread takes part and only waits for chunks another thread has already started,
// so a busy (or single-threaded) pool cannot deadlock it, and a task that starts after all work
// is claimed returns at once. Results never depend on which thread ran a chunk.

#ifndef MNV2_JAX_OPS_NATIVE_PARALLEL_H_
#define MNV2_JAX_OPS_NATIVE_PARALLEL_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace mnv2 {

// Runs body(chunk) for chunk in [0, num_chunks) on the caller and the pool.
template <typename F>
inline void ParallelFor(xla::ffi::ThreadPool& pool, int64_t num_chunks, const F& body) {
  const int64_t helpers = std::min<int64_t>(pool.num_threads(), num_chunks - 1);
  if (helpers <= 0) {
    for (int64_t i = 0; i < num_chunks; ++i) body(i);
    return;
  }
  struct State {
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
  };
  auto state = std::make_shared<State>();
  const F* fn = &body;  // Only dereferenced for a claimed chunk, i.e. while the caller waits.
  auto work = [state, num_chunks, fn]() {
    for (int64_t i; (i = state->next.fetch_add(1)) < num_chunks;) {
      (*fn)(i);
      state->done.fetch_add(1, std::memory_order_release);
    }
  };
  for (int64_t t = 0; t < helpers; ++t) pool.Schedule(decltype(work)(work));
  work();
  while (state->done.load(std::memory_order_acquire) < num_chunks) std::this_thread::yield();
}

// Splits `rows` into about `per_thread` chunks per thread (at least one row each).
inline int64_t NumChunks(xla::ffi::ThreadPool& pool, int64_t rows, int64_t per_thread) {
  const int64_t threads = std::max<int64_t>(1, pool.num_threads() + 1);
  return std::max<int64_t>(1, std::min<int64_t>(rows, threads * per_thread));
}

// Runs row_fn(row) for every row in [0, rows), in about `per_thread` contiguous ranges per thread.
template <typename RowFn>
inline void ParallelRows(xla::ffi::ThreadPool& pool, int64_t rows, int64_t per_thread,
                         const RowFn& row_fn) {
  const int64_t chunks = NumChunks(pool, rows, per_thread);
  ParallelFor(pool, chunks, [&](int64_t t) {
    for (int64_t r = rows * t / chunks; r < rows * (t + 1) / chunks; ++r) row_fn(r);
  });
}

// The number of partial sums is fixed (not derived from the thread count) so the summation
// order, and hence the result, is the same on every machine and thread count.
constexpr int64_t kPartialSums = 8;

// Accumulates row_fn(row, acc) over [0, rows) into kPartialSums fixed row ranges, each with its
// own zeroed accumulator of `width` floats, and writes their sum, in range order, to `out`.
template <typename RowFn>
inline void OrderedPartialSums(xla::ffi::ThreadPool& pool, int64_t rows, int64_t width,
                               float* out, const RowFn& row_fn) {
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(rows, kPartialSums));
  std::vector<float> partial(parts * width, 0.0f);
  ParallelFor(pool, parts, [&](int64_t t) {
    float* acc = partial.data() + t * width;
    for (int64_t r = rows * t / parts; r < rows * (t + 1) / parts; ++r) row_fn(r, acc);
  });
  std::fill(out, out + width, 0.0f);
  for (int64_t t = 0; t < parts; ++t) {
    const float* src = partial.data() + t * width;
    for (int64_t e = 0; e < width; ++e) out[e] += src[e];
  }
}

}  // namespace mnv2

#endif  // MNV2_JAX_OPS_NATIVE_PARALLEL_H_
