// Decode rows and token tiles for the R16 kernels (common.h layouts), shared by the AVX2 and AVX-512 sets: each
// kernel header defines its formats F (F::kPrep, F::prep) and `r16_pass<F, NT, PF>` (NT tokens × rows of a
// chunk), sets kR16MaxTokens (the most tokens one pass keeps in registers), then includes this file inside its ISA
// namespace.

static int32_t* r16_scratch(size_t n) {
  thread_local std::vector<int32_t> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}
// Prefill tiles (PF = false) and small batches (PF = true): tokens in passes of up to kR16MaxTokens, each weight
// super-block decoded once per pass. Every (row, token) runs the same steps whatever its pass (batch invariance).
template <class F, bool PF>
static void r16_tile(int K, const uint8_t* w, size_t rb, int nrows, const uint8_t* act, size_t actStride, int ntok,
                     float* out, size_t outStride) {
  constexpr int MT = kR16MaxTokens;
  const int nb = K / 256;
  int32_t* buf = r16_scratch((size_t)nb * F::kPrep * MT);
  for (int t0 = 0; t0 < ntok; t0 += MT) {
    const int nt = std::min(MT, ntok - t0);
    const ActQ8K* y[MT];
    const int32_t* pp[MT];
    for (int t = 0; t < nt; t++) {
      y[t] = (const ActQ8K*)(act + (size_t)(t0 + t) * actStride);
      pp[t] = buf + (size_t)t * nb * F::kPrep;
      F::prep(y[t], nb, buf + (size_t)t * nb * F::kPrep);
    }
    with_token_count<MT>(nt, [&](auto n) { r16_pass<F, decltype(n)::value, PF>(nb, w, rb, nrows, y, pp, out + (size_t)t0 * outStride, outStride); });
  }
}
// Decode (one token): the tile's one-token pass.
template <class F>
static void r16_rows(int K, const uint8_t* w, size_t rb, int nrows, const void* act, float* out, bool pf) {
  if (pf) r16_tile<F, true>(K, w, rb, nrows, (const uint8_t*)act, 0, 1, out, 0);
  else r16_tile<F, false>(K, w, rb, nrows, (const uint8_t*)act, 0, 1, out, 0);
}
// Table entries of an R16 layout `type` read by format F (K-quant activations).
template <class F>
static void fill_r16(KernelTable& t, int type) {
  t.rows[type] = r16_rows<F>;
  t.act[type] = ACT_Q8K;
  t.tile[type] = r16_tile<F, false>;
  t.batch[type] = r16_tile<F, true>;
}
