#include "pool.h"

#include <chrono>
#include <sched.h>
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
static inline void cpu_relax() { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpu_relax() { asm volatile("yield"); }
#else
static inline void cpu_relax() {}
#endif

namespace l4 {

Pool::Pool(int nthreads, int spinMicros) : spinMicros_(spinMicros) {
  for (int i = 1; i < nthreads; i++) threads_.emplace_back([this, i] { worker(i); });
}

Pool::~Pool() {
  stop_.store(true);
  wake_.fetch_add(1);
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

// Claims chunks of the current job until none is left. A seqlock on ctr_: the job fields are only written while
// ctr_ holds kLocked, so a successful compare-exchange from the value read before the fields proves they belong to
// that generation.
bool Pool::claimAndRun(int tid) {
  bool any = false;
  for (;;) {
    uint64_t v = ctr_.load(std::memory_order_acquire);
    const uint32_t idx = (uint32_t)v;
    if (idx == kLocked) return any;
    Fn fn = fn_.load(std::memory_order_relaxed);
    void* ctx = ctx_.load(std::memory_order_relaxed);
    const int n = n_.load(std::memory_order_relaxed);
    if ((int64_t)idx >= n) return any;
    if (!ctr_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) continue;
    fn(ctx, (int)idx, tid);
    done_.fetch_add(1, std::memory_order_release);
    any = true;
  }
}

void Pool::worker(int idx) {
  uint32_t seen = wake_.load();
  for (;;) {
    if (stop_.load(std::memory_order_relaxed)) return;
    claimAndRun(idx);
    // Spin a little (the next op of a decode step usually follows within microseconds), then sleep.
    const auto t0 = std::chrono::steady_clock::now();
    bool woke = false;
    for (int i = 0; !woke; i++) {
      if (wake_.load(std::memory_order_acquire) != seen) { woke = true; break; }
      cpu_relax();
      if ((i & 255) == 255 && std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(spinMicros_)) break;
    }
    if (!woke) {
      sleepers_.fetch_add(1);  // seq_cst pairs with run(): either it sees us sleeping or we see its bump
      wake_.wait(seen);
      sleepers_.fetch_sub(1);
    }
    seen = wake_.load();
  }
}

void Pool::run(Fn fn, void* ctx, int nchunks) {
  if (nchunks <= 0) return;
  if (threads_.empty() || nchunks == 1) {
    for (int c = 0; c < nchunks; c++) fn(ctx, c, 0);
    return;
  }
  gen_++;
  ctr_.store((uint64_t)gen_ << 32 | kLocked, std::memory_order_release);
  fn_.store(fn, std::memory_order_relaxed);
  ctx_.store(ctx, std::memory_order_relaxed);
  n_.store(nchunks, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  ctr_.store((uint64_t)gen_ << 32, std::memory_order_release);
  wake_.fetch_add(1);
  if (sleepers_.load() > 0) wake_.notify_all();
  claimAndRun(0);
  // Wait for chunks other threads are still running: spin, then yield the core (never a long busy-wait).
  for (int i = 0; done_.load(std::memory_order_acquire) < nchunks; i++) {
    if (i < 20000) cpu_relax();
    else sched_yield();
  }
}

}  // namespace l4
