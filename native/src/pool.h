// A persistent thread pool for the kernels. Work is split into chunks that threads claim from one atomic counter
// (dynamic scheduling: on a shared, noisy machine a descheduled thread does not hold the others back, because the
// caller and the running threads simply take its chunks). Idle workers spin briefly, then sleep on a futex
// (C++20 atomic::wait), so a model that is not generating burns no CPU.
#pragma once
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace l4 {

class Pool {
 public:
  using Fn = void (*)(void* ctx, int chunk, int thread);
  explicit Pool(int nthreads, int spinMicros = 50);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  int size() const { return (int)threads_.size() + 1; }
  // Runs fn(ctx, c, t) for every chunk c in [0, nchunks) on the calling thread (t = 0) and the workers (t >= 1);
  // returns when all chunks are done. Not reentrant: one run at a time per pool.
  void run(Fn fn, void* ctx, int nchunks);

 private:
  static constexpr uint32_t kLocked = 0xffffffffu;
  void worker(int idx);
  bool claimAndRun(int tid);

  std::vector<std::thread> threads_;
  int spinMicros_;
  uint32_t gen_ = 0;
  alignas(64) std::atomic<uint64_t> ctr_{0};  // generation << 32 | next chunk (kLocked while a job is published)
  alignas(64) std::atomic<int> done_{0};      // chunks finished in the current generation
  alignas(64) std::atomic<uint32_t> wake_{0}; // bumped on every published job; workers futex-wait on it
  std::atomic<int> sleepers_{0};
  std::atomic<Fn> fn_{nullptr};
  std::atomic<void*> ctx_{nullptr};
  std::atomic<int> n_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace l4
