// Engine::parallelFor, shared by the engine's translation units (ops.cc, ops-attention.cc): n items in at most
// 4 chunks per thread of at least minPer items, f(a, b, tid) per chunk on the pool.
#pragma once
#include "ops.h"

#include <algorithm>

namespace l4 {

template <class F>
void Engine::parallelFor(int64_t n, int64_t minPer, F&& f) {
  const int nth = pool_.size();
  int64_t chunks = std::min<int64_t>((n + minPer - 1) / minPer, (int64_t)nth * 4);
  if (chunks <= 1) { if (n > 0) f(0, n, 0); return; }
  struct Ctx { F* f; int64_t n, per; } c{&f, n, (n + chunks - 1) / chunks};
  chunks = (n + c.per - 1) / c.per;
  pool_.run([](void* p, int ch, int tid) {
    auto& c = *(Ctx*)p;
    const int64_t a = ch * c.per, b = std::min(c.n, a + c.per);
    (*c.f)(a, b, tid);
  }, &c, (int)chunks);
}

}  // namespace l4
