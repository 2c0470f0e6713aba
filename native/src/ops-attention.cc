// The engine's attention (Engine::attention, attentionFull, attentionMany and their work units), split from ops.cc:
// flash-attention-style tiles for prefill, flash-decoding slices and whole-block kv-head walks for decode.
#include <cstdlib>
#include "ops.h"
#include "ops-parallel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace l4 {

// ---------------------------------------------------------------------------------------------------------------
// Attention: q [T, H, d], k/v [S, Hkv, d] (f32). Flash-attention style: a unit of work is one kv head × a tile of
// 16 queries (× a group of key slices, see below); it walks the keys in blocks of 64 that stay in L1 while every
// query of the tile and every query head sharing that kv head (GQA group) consumes them, with an online softmax
// (running max m, sum l, unnormalised output acc per query head). Each query's visible keys are one contiguous
// range because both masks are intervals: causal (k <= q) and Llama 4's chunked mask (RoPE layers only see keys of
// their own 8192-token chunk: floor(k/C) == floor(q/C)).
//
// Batch invariance (continuous batching must give each request exactly its solo output): a query's result may
// depend only on the query and its visible keys, never on the other queries of the call, on T, S or on how threads
// split the work. So the order of floating-point operations is pinned to absolute key positions:
//  * key blocks are aligned to multiples of 64 positions (not to the start of the tile's union range), so the
//    online-softmax rescaling points of a query are the same whatever else shares its tile;
//  * keys are cut into slices of 512 positions, again at absolute multiples; each slice yields a partial (m, l, acc)
//    per query head, and partials are folded into the result strictly in ascending slice order by one function
//    (foldSlice). A prefill unit folds as it walks the slices; decode (too few units to feed every thread) spreads
//    the slices over threads (flash-decoding), stores each slice's partial and folds them afterwards in the same
//    order, so splitting or not gives the same bits.
static constexpr int kQTile = 64, kKBlock = 64, kKSlice = 512;  // kKSlice is a multiple of kKBlock
// L4_ATTN_ROWS=0 runs attn_row per query instead of attn_rows (same bits; for benchmarks of the two).
static bool attnRowsOff() {
  static const bool off = [] { const char* e = std::getenv("L4_ATTN_ROWS"); return e && e[0] == '0'; }();
  return off;
}
// L4_ATTN_HEADS=0 keeps one kv head per decode unit (same bits; for benchmarks of the two).
static bool attnHeadsOff() {
  static const bool off = [] { const char* e = std::getenv("L4_ATTN_HEADS"); return e && e[0] == '0'; }();
  return off;
}
// L4_ATTN_HEADS_KERNEL=0 keeps decode on the per-head block loop instead of the kernel table's attn_heads (same bits).
static bool attnHeadsKernelOff() {
  static const bool off = [] { const char* e = std::getenv("L4_ATTN_HEADS_KERNEL"); return e && e[0] == '0'; }();
  return off;
}
static constexpr int kHeadsMaxT = 4;  // calls of at most this many queries walk all kv heads per unit (decode)
static constexpr int kPfRows = 24;  // rows fetched ahead of the conversion (attnUnitT)
static constexpr int kPfBlocks = 2;  // decode over all kv heads: key blocks fetched ahead (attnUnitT)
static constexpr int kCopyMinT = 8;  // f32 caches: tiles of this many queries copy each block to contiguous rows
static constexpr int kFullMaxS = 16384;  // attentionFull's scratch is 8·S floats per thread
static inline int64_t floorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Software prefetch of n K and V rows (rowB bytes each, `stride` bytes apart).
static inline void prefetchRows(const uint8_t* k, const uint8_t* v, size_t stride, int64_t n, size_t rowB) {
  for (int64_t j = 0; j < n; j++)
    for (size_t o = 0; o < rowB; o += 64) {
      __builtin_prefetch(k + (size_t)j * stride + o, 0, 3);
      __builtin_prefetch(v + (size_t)j * stride + o, 0, 3);
    }
}

// Plain loads of keys [ka, kz)'s K and V rows (`row` bytes per key, all kv heads), the part [off, off + part) of each:
// a decode unit's heads. In address order, so the hardware stream prefetchers follow; they run ahead with more
// requests in flight than one core's software prefetches, which read a 32k-key f16 cache slower (see attnUnitT).
// One byte per cache line: an 8-byte load at the last line's start could reach past a span (and the buffer's end)
// whose length is not a multiple of 8, and q8_0 rows are only 2-byte aligned.
static inline void touchKvRows(const uint8_t* k, const uint8_t* v, size_t row, size_t off, size_t part, int64_t ka, int64_t kz) {
  uint64_t sink = 0;
  if (part == row) {  // all heads: the keys' rows are one contiguous range
    const uint8_t *kp = k + (size_t)ka * row, *vp = v + (size_t)ka * row;
    for (size_t o = 0, e = kz > ka ? (size_t)(kz - ka) * row : 0; o < e; o += 64)
      sink += *(const volatile uint8_t*)(kp + o) + *(const volatile uint8_t*)(vp + o);
  } else
    for (int64_t key = ka; key < kz; key++) {
      const uint8_t *kp = k + (size_t)key * row + off, *vp = v + (size_t)key * row + off;
      for (size_t o = 0; o < part; o += 64) sink += *(const volatile uint8_t*)(kp + o) + *(const volatile uint8_t*)(vp + o);
    }
  asm volatile("" ::"r"(sink));
}

// Folds one slice's partial (ms, ls, as[d]) into the running result (m, l, o[d]); ls == 0 means the slice had no
// visible key. Out of line, so every caller gets the same instructions (no caller-dependent FMA contraction).
[[gnu::noinline]] static void foldSlice(float& m, float& l, float* o, float ms, float ls, const float* as, int d) {
  if (ls == 0) return;
  if (l == 0) { m = ms; l = ls; std::memcpy(o, as, sizeof(float) * d); return; }
  const float mn = std::max(m, ms), fa = std::exp(m - mn), fb = std::exp(ms - mn);
  for (int i = 0; i < d; i++) o[i] = o[i] * fa + as[i] * fb;
  l = l * fa + ls * fb;
  m = mn;
}
// out = o / l; no visible key at all gives zeros (cannot happen in causal self-attention).
[[gnu::noinline]] static void finishQuery(float* out, float l, const float* o, int d) {
  if (l == 0) { std::memset(out, 0, sizeof(float) * d); return; }
  const float inv = 1.f / l;
  for (int i = 0; i < d; i++) out[i] = o[i] * inv;
}


// One body for every K/V storage type: KV picks the kernel table's row function for the storage (attn_row[]), whose
// f16/q8_0 loaders give exactly the dequantized values, so compressed attention equals f32 attention on the
// dequantized cache and inherits batch invariance.
// The fixed facts of one attention call, shared by its work units.
struct AttnPlan {
  float* out; const float* q; const uint8_t* kbase; const uint8_t* vbase; AttnShape s;
  int tiles, units0;       // query tiles; (kv-head group, tile) units
  int headsPerUnit;        // kv heads a unit walks together: 1, or all of them (decode, see attention())
  int64_t slice0, nslices; // absolute key slices covered
  int64_t nsplit;          // slices spread over this many units per (kv head, tile)
  size_t rowB;             // bytes per (key, kv head) row
  float* part;             // [slice][t][h](m, l, acc[d]) when nsplit > 1
};
static AttnPlan attnPlan(float* out, const float* q, const void* k, const void* v, const AttnShape& s) {
  AttnPlan p{out, q, (const uint8_t*)k, (const uint8_t*)v, s, 0, 0, 1, 0, 0, 1, 0, nullptr};
  p.tiles = (s.T + kQTile - 1) / kQTile;
  p.units0 = s.nKvHeads * p.tiles;
  // slices [slice0 + i] cover absolute key positions [(slice0 + i)·kKSlice, …); key index j is position kPos0 + j
  p.slice0 = floorDiv(s.kPos0, kKSlice);
  p.nslices = floorDiv(s.kPos0 + s.S - 1, kKSlice) - p.slice0 + 1;
  const int d = s.headDim;
  p.rowB = s.kvType == T_F32 ? (size_t)d * 4 : s.kvType == T_F16 ? (size_t)d * 2 : (size_t)(d / QK) * sizeof(BlockQ8_0);
  return p;
}

void Engine::attention(float* out, const float* q, const void* k, const void* v, const AttnShape& s) {
  const int T = s.T, S = s.S;
  if (T <= 0) return;
  if (S <= 0) { std::memset(out, 0, sizeof(float) * (size_t)T * s.nHeads * s.headDim); return; }
  // Unmasked f32 attention (the vision tower) as small GEMMs when the kernel set has them. The choice depends on the
  // mask, the storage and S only, never on T, so a query alone gets the same bits as in a full call.
  if (!s.causal && s.chunkSize == 0 && s.kvType == T_F32 && kt_->attn_full && S <= kFullMaxS) {
    attentionFull(out, q, (const float*)k, (const float*)v, s);
    return;
  }
  AttnPlan p = attnPlan(out, q, k, v, s);
  const int nth = pool_.size();
  // Decode: a unit walks every kv head block by block instead of one head's rows, which lie Hkv·rowB bytes apart
  // (2–4 KiB): the cache is then read position by position, almost sequentially, and the hardware prefetchers keep
  // up, where one head's strided rows were a cache miss each (T=1 over 32k f16 keys read at ~4 GB/s). Per query the
  // operations are unchanged, so the bits are too.
  if (T <= kHeadsMaxT && s.nKvHeads > 1 && !attnHeadsOff()) {
    p.headsPerUnit = s.nKvHeads;
    // A cache of one key slice (up to 512 positions: most chats) gives no slices to spread over the threads, so
    // split the kv heads into groups instead, one unit each: with all heads in one unit the other threads idled
    // while one read the whole cache (a cold 512-key f16 cache took 209 µs on two threads against 236 on one).
    if (p.nslices < nth)
      for (int g = std::min<int>(nth, s.nKvHeads); g > 1; g--)  // the most groups that divide the heads evenly
        if (s.nKvHeads % g == 0) { p.headsPerUnit = s.nKvHeads / g; break; }
    p.units0 = p.tiles * (s.nKvHeads / p.headsPerUnit);
  }
  // Spread slices over threads only when the (kv head, query tile) units are too few; the split changes where the
  // work runs, not the result. Partials are kept per slice: bound their memory.
  const double partFloats = (double)p.nslices * T * s.nHeads * (s.headDim + 2);
  if (p.units0 < 4 * nth && p.nslices > 1 && partFloats <= (double)(16 << 20))
    p.nsplit = std::min<int64_t>(p.nslices, (4 * nth + p.units0 - 1) / p.units0);
  std::vector<float> part(p.nsplit > 1 ? (size_t)partFloats : 0);
  p.part = part.data();
  attentionScratch(s.headDim, s.nHeads / s.nKvHeads, s.nHeads);
  // Units run last tile first: with a causal mask a tile's cost grows with its position, and threads claim chunks
  // of consecutive units, so the cheap ones left at the end even out the threads' finishing times.
  const int64_t units = (int64_t)p.units0 * p.nsplit;
  parallelFor(units, 1, [&](int64_t a, int64_t b, int tid) {
    for (int64_t u = a; u < b; u++) attnUnit(p, units - 1 - u, tid);
  });
  if (p.nsplit == 1) return;
  // fold the slices' partials in ascending order, exactly as an unsplit unit does
  const int H = s.nHeads, d = s.headDim;
  for (int t = 0; t < T; t++)
    for (int h = 0; h < H; h++) {
      float* o = out + ((size_t)t * H + h) * d;
      float m = -INFINITY, l = 0;
      for (int64_t si = 0; si < p.nslices; si++) {
        const float* pp = part.data() + (((size_t)si * T + t) * H + h) * (d + 2);
        foldSlice(m, l, o, pp[0], pp[1], pp + 2, d);
      }
      finishQuery(o, l, o, d);
    }
}

// Whole-row attention (KernelTable::attn_full): K and V of every kv head are repacked once (Kt [d][Sp], Vp [S][dp]),
// then units of (query head, 8 queries) each compute their block's scores against every key, the softmax and the
// output. Scratch per thread: 8 rows of Sp scores.
void Engine::attentionFull(float* out, const float* q, const float* k, const float* v, const AttnShape& s) {
  const int H = s.nHeads, Hkv = s.nKvHeads, d = s.headDim, T = s.T, S = s.S, group = H / Hkv;
  const int Sp = (S + 15) / 16 * 16, dp = (d + 15) / 16 * 16;
  const size_t ktN = (size_t)d * Sp, vpN = (size_t)S * dp;
  if (fullKV_.size() < (size_t)Hkv * (ktN + vpN)) fullKV_.resize((size_t)Hkv * (ktN + vpN));
  float* kt = fullKV_.data();
  float* vp = kt + (size_t)Hkv * ktN;
  parallelFor(Hkv, 1, [&](int64_t a, int64_t b, int) {
    for (int64_t h = a; h < b; h++) {
      float* K = kt + h * ktN;
      float* V = vp + h * vpN;
      for (int j = 0; j < S; j++) {
        const float* kr = k + ((size_t)j * Hkv + h) * d;
        for (int i = 0; i < d; i++) K[(size_t)i * Sp + j] = kr[i];
        std::memcpy(V + (size_t)j * dp, v + ((size_t)j * Hkv + h) * d, sizeof(float) * d);
        std::memset(V + (size_t)j * dp + d, 0, sizeof(float) * (dp - d));
      }
      for (int i = 0; i < d; i++) std::memset(K + (size_t)i * Sp + S, 0, sizeof(float) * (Sp - S));
    }
  });
  for (auto& b : scratch_) if (b.size() < (size_t)8 * Sp) b.resize((size_t)8 * Sp);
  const int blocks = (T + 7) / 8;
  parallelFor((int64_t)H * blocks, 1, [&](int64_t a, int64_t b, int tid) {
    for (int64_t u = a; u < b; u++) {
      const int h = (int)(u % H), t0 = (int)(u / H) * 8, kvh = h / group;
      kt_->attn_full(q + ((size_t)t0 * H + h) * d, (size_t)H * d, std::min(8, T - t0), kt + kvh * ktN, vp + kvh * vpN, S, Sp, d, dp,
                     s.scale, out + ((size_t)t0 * H + h) * d, (size_t)H * d, scratch_[tid].data());
    }
  });
}

// Several sequences' attention (a batched decode step: each sequence's queries against its own cache) in one pool
// run. Every (sequence, kv head, query tile) unit computes exactly what attention() computes for it unsplit, and an
// unsplit unit gives the same bits as a split one (see above), so results equal separate calls.
void Engine::attentionMany(const AttnJob* jobs, int n) {
  std::vector<AttnPlan> ps;
  std::vector<int64_t> first;  // first unit of each plan
  int64_t units = 0;
  for (int i = 0; i < n; i++) {
    const AttnShape& s = jobs[i].s;
    if (s.T <= 0) continue;
    if (s.S <= 0) { std::memset(jobs[i].out, 0, sizeof(float) * (size_t)s.T * s.nHeads * s.headDim); continue; }
    ps.push_back(attnPlan(jobs[i].out, jobs[i].q, jobs[i].k, jobs[i].v, s));
    // Decoding sequences walk all their kv heads per unit, as attention() does: one head's rows lie Hkv·rowB bytes
    // apart, and 8 sequences over 1,000 f16 keys each took 2.4 ms that way against 1.5 ms in 8 separate calls.
    if (s.T <= kHeadsMaxT && s.nKvHeads > 1 && !attnHeadsOff()) { ps.back().headsPerUnit = s.nKvHeads; ps.back().units0 = ps.back().tiles; }
    attentionScratch(s.headDim, s.nHeads / s.nKvHeads, s.nHeads);
    first.push_back(units);
    units += ps.back().units0;
  }
  parallelFor(units, 1, [&](int64_t a, int64_t b, int tid) {
    size_t i = 0;
    for (int64_t u = a; u < b; u++) {
      while (i + 1 < ps.size() && first[i + 1] <= u) i++;
      attnUnit(ps[i], u - first[i], tid);
    }
  });
}

void Engine::attentionScratch(int d, int group, int H) {
  const size_t combos = std::max((size_t)kQTile * group, (size_t)kHeadsMaxT * H);  // (token, query head) pairs of a unit
  // M, L, Mr, Lr, acc, Or per combo; scores of a block per combo; one block's keys and values as f32
  const size_t need = combos * (2 * d + 4) + combos * kKBlock + 2 * (size_t)kKBlock * d;
  for (auto& b : scratch_) if (b.size() < need) b.resize(need);
  for (auto& b : qptrs_) if (b.size() < combos) b.resize(combos);
  for (auto& b : combos_) if (b.size() < combos) b.resize(combos);
}

void Engine::attnUnit(const AttnPlan& p, int64_t u, int tid) {
  if (p.s.kvType == T_F16) attnUnitT<T_F16>(p, u, tid);
  else if (p.s.kvType == T_Q8_0) attnUnitT<T_Q8_0>(p, u, tid);
  else attnUnitT<T_F32>(p, u, tid);
}

// One work unit: kv head (or all kv heads, block by block) × query tile × a range of key slices. One body for every K/V storage type: KV picks the
// kernel table's row function for the storage (attn_row[]), whose f16/q8_0 loaders give exactly the dequantized
// values, so compressed attention equals f32 attention on the dequantized cache and inherits batch invariance.
template <int KV>
void Engine::attnUnitT(const AttnPlan& p, int64_t u, int tid) {
  const AttnShape& s = p.s;
  const int d = s.headDim, H = s.nHeads, Hkv = s.nKvHeads, group = H / Hkv, T = s.T, S = s.S;
  const size_t combos = std::max((size_t)kQTile * group, (size_t)kHeadsMaxT * H), rowB = p.rowB;
  const float* q = p.q;
  const uint8_t *kbase = p.kbase, *vbase = p.vbase;
  auto visible = [&](int t, int64_t& lo, int64_t& hi) {
    const int64_t qp = s.qPos0 + t;
    lo = 0; hi = S;
    if (s.causal) hi = std::min<int64_t>(S, qp - s.kPos0 + 1);
    if (s.chunkSize > 0) lo = std::max<int64_t>(0, (qp / s.chunkSize) * s.chunkSize - s.kPos0);
  };
  float* buf = scratch_[tid].data();
  // state per (kv head of the unit, token, query head of its group): head kvh's combos start at (kvh − h0)·nc
  float* M = buf;                    // [combos] running max within the slice
  float* L = M + combos;             // [combos] running sum within the slice
  float* Mr = L + combos;            // [combos] folded max over the slices so far
  float* Lr = Mr + combos;           // [combos] folded sum
  float* acc = Lr + combos;          // [combos][d] slice accumulator
  float* Or = acc + combos * d;      // [combos][d] folded accumulator
  float* sc = Or + combos * d;       // [combos][kKBlock] scores of one block
  float* kc = sc + combos * kKBlock; // [kKBlock][d] the block's keys as f32 (f16 / q8_0 caches)
  float* vc = kc + (size_t)kKBlock * d;
  const float** qp = qptrs_[tid].data();
  int* cp = combos_[tid].data();
  const int64_t nsplit = p.nsplit, nslices = p.nslices, slice0 = p.slice0;
  const int hpu = p.headsPerUnit, ngroups = Hkv / hpu;
  const int h0 = (int)(u % ngroups) * hpu, split = (int)((u / ngroups) % nsplit), tile = (int)(u / ngroups / nsplit);
  const int t0 = tile * kQTile, t1 = std::min(T, t0 + kQTile);
  const size_t nc = (size_t)(t1 - t0) * group, nca = nc * hpu;  // combos per kv head; of the unit
  for (size_t c = 0; c < nca; c++) { Mr[c] = -INFINITY; Lr[c] = 0; }
  const int64_t i0 = split * nslices / nsplit, i1 = (split + 1) * nslices / nsplit;
  const int64_t unitEnd = std::min<int64_t>(S, (slice0 + i1) * kKSlice - s.kPos0);  // past this unit's last key
  const size_t unitOff = (size_t)h0 * rowB, unitPart = (size_t)hpu * rowB;  // the unit's heads within a key's rows
  // Decode over several kv heads with a kernel set that has attn_heads: when every query of the tile sees the same
  // keys of a block (always, for one token), the block's rows of all the unit's heads go in one call that reads them
  // in address order and prefetches the next block as it goes (see AttnHeadsFn). Per query the same operations as
  // the per-head loop below, so the same bits. Measured on one 32k-key f16 cache (AMD EPYC Zen 4, 16/8 heads × 128,
  // runs alternating in one process): 1 thread 10.3-11.8 -> 15.9-18.3 GB/s, 2 threads 19.1-22.9 -> 27.1-35.9.
  AttnHeadsFn headsFn = kt_->attn_heads[kv_index(KV)];
  const bool heads = hpu > 1 && T < kCopyMinT && headsFn && !attnRowsOff() && !attnHeadsKernelOff();
  auto headsBlock = [&](int64_t kb, int64_t sa, int64_t sb) {
    const int64_t ke = std::min<int64_t>(kb + kKBlock, S);
    int64_t jlo = 0, jhi = 0;
    for (int t = t0; t < t1; t++) {
      int64_t lo, hi; visible(t, lo, hi);
      const int64_t a = std::max(kb, std::max(lo, sa)), b = std::min(ke, std::min(hi, sb));
      if (t == t0) { jlo = a; jhi = b; }
      else if (a != jlo || b != jhi) return false;  // tokens see different keys here: the per-head loop
    }
    if (jlo >= jhi) return true;
    // the next block, up to the unit's last key (across slice boundaries)
    const int64_t pa = kb + kKBlock, pe = std::min<int64_t>(pa + kKBlock, unitEnd);
    KvPrefetch pk, pv;
    if (pa < pe) {
      pk.stride = pv.stride = (size_t)Hkv * rowB;
      pk.part = pv.part = unitPart;
      pk.rows = pv.rows = (int)(pe - pa);
      pk.base = kbase + (size_t)pa * Hkv * rowB + unitOff;
      pv.base = vbase + (size_t)pa * Hkv * rowB + unitOff;
    }
    int nq = 0;
    for (int kvh = h0; kvh < h0 + hpu; kvh++)
      for (int t = t0; t < t1; t++)
        for (int g = 0; g < group; g++) {
          qp[nq] = q + ((size_t)t * H + kvh * group + g) * d;
          cp[nq++] = (int)((size_t)(kvh - h0) * nc + (size_t)(t - t0) * group + g);
        }
    headsFn(hpu, (int)nc, qp, cp, kbase + ((size_t)jlo * Hkv + h0) * rowB, vbase + ((size_t)jlo * Hkv + h0) * rowB, rowB,
            (size_t)Hkv * rowB, (int)(jhi - jlo), d, s.scale, M, L, acc, sc, pa < pe ? &pk : nullptr, pa < pe ? &pv : nullptr);
    return true;
  };
  if (hpu > 1 && T < kCopyMinT) {
    // Decode reads block kb + kPfBlocks (kb + 1 with attn_heads) while it computes block kb (below), so the unit's
    // first blocks would be demand misses in compute order, one head's strided rows at a time: read them up front in address
    // order instead. A 52-key f16 cache, evicted since the last step (the weights streamed in between), took
    // 32-36 µs per call on one thread, 21-22 with this. Loads only: results are unchanged.
    const int64_t pa = std::max<int64_t>(0, (slice0 + i0) * kKSlice - s.kPos0);
    touchKvRows(kbase, vbase, (size_t)Hkv * rowB, unitOff, unitPart, pa,
                std::min<int64_t>(unitEnd, (floorDiv(s.kPos0 + pa, kKBlock) + (heads ? 1 : kPfBlocks)) * kKBlock - s.kPos0));
  }
  for (int64_t si = i0; si < i1; si++) {
    // this slice's key indices, clipped to the cache
    const int64_t sa = std::max<int64_t>(0, (slice0 + si) * kKSlice - s.kPos0);
    const int64_t sb = std::min<int64_t>(S, (slice0 + si + 1) * kKSlice - s.kPos0);
    int64_t ulo = sb, uhi = sa;  // union of the tile's visible ranges within this slice
    for (int t = t0; t < t1; t++) {
      int64_t lo, hi; visible(t, lo, hi);
      ulo = std::min(ulo, std::max(lo, sa)); uhi = std::max(uhi, std::min(hi, sb));
    }
    for (size_t c = 0; c < nca; c++) { M[c] = -INFINITY; L[c] = 0; }
    std::memset(acc, 0, sizeof(float) * nca * d);
    // blocks start at absolute positions that are multiples of kKBlock
    for (int64_t kb = floorDiv(s.kPos0 + ulo, kKBlock) * kKBlock - s.kPos0; kb < uhi; kb += kKBlock) {
      if (heads && headsBlock(kb, sa, sb)) continue;
      for (int kvh = h0; kvh < h0 + hpu; kvh++) {  // (body not re-indented: one kv head's block)
      const int64_t ke = std::min<int64_t>(kb + kKBlock, uhi);
      float *Mh = M + (size_t)(kvh - h0) * nc, *Lh = L + (size_t)(kvh - h0) * nc, *acch = acc + (size_t)(kvh - h0) * nc * d;
      // The attn_rows path: compressed blocks are dequantized once for the whole tile instead of once per query. f16
      // takes it only where the kernel set says so (attn_rows_f16: AVX-512's register-blocked kernel); with AVX2's
      // attn_rows the per-query path, converting f16 in registers, measured faster.
      if ((KV != T_F16 || kt_->attn_rows_f16) && kt_->attn_rows && !attnRowsOff()) {
        // Keys [cb, ke) as f32 rows: read in place (f32) or dequantized once for every query of the tile (the
        // loaders' exact values, so the same bits as reading them in place).
        const int64_t cb = std::max(kb, ulo);
        const uint8_t *kr = kbase + ((size_t)cb * Hkv + kvh) * rowB, *vr = vbase + ((size_t)cb * Hkv + kvh) * rowB;
        size_t kstride = (size_t)Hkv * rowB;
        // A kv head's rows are Hkv·rowB bytes apart in the cache (2–4 KiB), a pattern the hardware prefetchers do
        // not follow: without software prefetch every row is a cache miss, and decode over a long cache runs at a
        // fraction of the memory bandwidth. Decode (T < kCopyMinT) reads the rows in place (f32, or any storage the
        // kernel set has attn_rows_kv for: converting a block to f32 first cost as much as the attention) and fetches
        // the next block while this one computes; otherwise rows are converted (copied, for f32) to contiguous f32
        // rows 8 at a time, fetching the rows kPfRows ahead (into the next block).
        const int64_t nb = ke - cb, pfEnd = std::min<int64_t>(uhi, ke + kKBlock) - cb;
        AttnRowsFn rows = kt_->attn_rows;
        const bool inPlace = T < kCopyMinT && (KV == T_F32 || kt_->attn_rows_kv[kv_index(KV)]);
        if (inPlace) {
          if (kt_->attn_rows_kv[kv_index(KV)]) rows = kt_->attn_rows_kv[kv_index(KV)];
          if (hpu > 1) {
            // Every kv head of a block: the block's K rows (keys × Hkv·rowB bytes) and V rows are one contiguous
            // range each. Read the block kPfBlocks ahead in address order, 1/hpu of it per head step, with plain
            // loads: they train the hardware stream prefetchers, which then run ahead with more requests in flight
            // than one core's software prefetches get (those, one head's strided rows per step, read a 32k-key f16
            // cache at 6–7 GB/s with the training job beside it, these at 9–10). Reads up to the unit's last key,
            // across slice boundaries. Loads only: results are unchanged.
            // A unit of some of the kv heads (see attention()) reads only its heads' part of each key's rows.
            const int64_t pa = kb + (int64_t)kKBlock * kPfBlocks, pe = std::min<int64_t>(pa + kKBlock, unitEnd);
            if (pa < pe) {
              const int64_t n = pe - pa, w = kvh - h0;
              touchKvRows(kbase, vbase, (size_t)Hkv * rowB, unitOff, unitPart, pa + n * w / hpu, pa + n * (w + 1) / hpu);
            }
          } else if (ke < uhi) prefetchRows(kr + (size_t)nb * kstride, vr + (size_t)nb * kstride, kstride, pfEnd - nb, rowB);
        } else {
          for (int64_t r = 0; r < nb; r += 8) {
            const int64_t pa = r + kPfRows, pb = std::min(pa + 8, pfEnd);
            if (pa < pb) prefetchRows(kr + (size_t)pa * kstride, vr + (size_t)pa * kstride, kstride, pb - pa, rowB);
            const int m = (int)std::min<int64_t>(8, nb - r);
            kt_->kv_rows[kv_index(KV)](kc + (size_t)r * d, kr + (size_t)r * kstride, kstride, m, d);
            kt_->kv_rows[kv_index(KV)](vc + (size_t)r * d, vr + (size_t)r * kstride, kstride, m, d);
          }
          kr = (const uint8_t*)kc;
          vr = (const uint8_t*)vc;
          kstride = (size_t)d * 4;
        }
        // Runs of tokens that see the same keys of this block go in one call, with their query heads.
        for (int t = t0; t < t1;) {
          int64_t lo, hi; visible(t, lo, hi);
          const int64_t jlo = std::max(kb, std::max(lo, sa)), jhi = std::min(ke, std::min(hi, sb));
          int te = t + 1;
          for (; te < t1; te++) {
            int64_t lo2, hi2; visible(te, lo2, hi2);
            if (std::max(kb, std::max(lo2, sa)) != jlo || std::min(ke, std::min(hi2, sb)) != jhi) break;
          }
          if (jlo < jhi) {
            int nq = 0;
            for (int tt = t; tt < te; tt++)
              for (int g = 0; g < group; g++) {
                qp[nq] = q + ((size_t)tt * H + kvh * group + g) * d;
                cp[nq++] = (tt - t0) * group + g;
              }
            rows(nq, qp, cp, kr + (size_t)(jlo - cb) * kstride, vr + (size_t)(jlo - cb) * kstride, kstride, (int)(jhi - jlo), d, s.scale,
                 Mh, Lh, acch, sc);
          }
          t = te;
        }
        continue;
      }
      for (int t = t0; t < t1; t++) {
        int64_t lo, hi; visible(t, lo, hi);
        const int64_t jlo = std::max(kb, std::max(lo, sa)), jhi = std::min(ke, std::min(hi, sb));
        if (jlo >= jhi) continue;
        for (int g = 0; g < group; g++) {
          const int h = kvh * group + g;
          const size_t c = (size_t)(t - t0) * group + g;
          kt_->attn_row[kv_index(KV)](q + ((size_t)t * H + h) * d, kbase + ((size_t)jlo * Hkv + kvh) * rowB,
                                      vbase + ((size_t)jlo * Hkv + kvh) * rowB, (size_t)Hkv * rowB, (int)(jhi - jlo), d,
                                      s.scale, &Mh[c], &Lh[c], acch + c * d, sc);
        }
      }
      }
    }
    for (int kvh = h0; kvh < h0 + hpu; kvh++)
    for (int t = t0; t < t1; t++)
      for (int g = 0; g < group; g++) {
        const int h = kvh * group + g;
        const size_t c = (size_t)(kvh - h0) * nc + (size_t)(t - t0) * group + g;
        if (nsplit == 1) foldSlice(Mr[c], Lr[c], Or + c * d, M[c], L[c], acc + c * d, d);
        else {
          float* pp = p.part + (((size_t)si * T + t) * H + h) * (d + 2);
          pp[0] = M[c]; pp[1] = L[c];
          if (L[c] != 0) std::memcpy(pp + 2, acc + c * d, sizeof(float) * d);
        }
      }
  }
  if (nsplit == 1)
    for (int kvh = h0; kvh < h0 + hpu; kvh++)
    for (int t = t0; t < t1; t++)
      for (int g = 0; g < group; g++) {
        const int h = kvh * group + g;
        const size_t c = (size_t)(kvh - h0) * nc + (size_t)(t - t0) * group + g;
        finishQuery(p.out + ((size_t)t * H + h) * d, Lr[c], Or + c * d, d);
      }
}

}  // namespace l4
