// Cold (DRAM-streaming) matvec of one type, one thread: 512 MiB of distinct random matrices per pass, rows in the
// chunks ops.cc gives one thread (4 per matrix), the AVX-512 table, the AVX2 table and a plain 512-bit read loop
// alternating in every pass (the machine is shared: the median per-pass time ratio of the two tables is the robust
// figure). Build as bench/kquant-tile.cc (add -mavx512f -mavx512bw), then /tmp/kquant-cold TYPE|all [N] [K]
#include "common.h"
#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <vector>
#include <random>
#include <algorithm>
namespace l4 { int type_block_size(int t){ return t==2||t==8?32:256; } int type_block_bytes(int t){ return t==2?18:t==8?34:t==12?144:t==13?176:t==14?210:t==23?136:0; } }
using namespace l4;
int main(int argc, char** argv) {
  const int N = argc > 2 ? atoi(argv[2]) : 1024, K = argc > 3 ? atoi(argv[3]) : 2048;
  const KernelTable* kt = argc > 4 && !strcmp(argv[4], "avx2") ? kernels_avx2() : kernels_avx512();
  const int types[] = {2, 12, 13, 14, 23};
  std::mt19937 rng(3);
  std::vector<float> x(K); for (auto& v : x) v = std::normal_distribution<float>()(rng);
  std::vector<uint8_t> a8(K/256*sizeof(ActQ8K)), a0(K/32*sizeof(ActQ8));
  kt->quant_q8k(x.data(), a8.data(), K); kt->quant_q8(x.data(), a0.data(), K);
  const size_t pass = (size_t)512 << 20;
  std::vector<uint8_t> buf(pass + 4096);
  for (size_t i = 0; i < buf.size(); i += 4096) buf[i] = 1;
  std::vector<float> out(N);
  auto now = []{ return std::chrono::steady_clock::now(); };
  double bwBest = 0;
  for (int ty : types) {
    if (argc > 1 && strcmp(argv[1], "all") && atoi(argv[1]) != ty) continue;
    const size_t rb = (size_t)K / type_block_size(ty) * type_block_bytes(ty), mb = rb * N, copies = pass / mb;
    for (size_t c = 0; c < copies; c++) for (int r = 0; r < N; r++) for (int b = 0; b < K / type_block_size(ty); b++) {
      uint8_t* p = buf.data() + c * mb + r * rb + b * type_block_bytes(ty);
      for (int j = 0; j < type_block_bytes(ty); j++) p[j] = rng();
      if (ty == 14) { p[209] = 0x20; } else if (ty == 12 || ty == 13) { p[1] = 0x20; p[3] = 0x10; } else p[1] = 0x20;
    }
    const int rows = (std::max(8, N / 4) + 7) / 8 * 8;
    double best = 1e9, bwb = 1e9, best2 = 1e9;
    const KernelTable* k2 = kernels_avx2();
    std::vector<double> ratios;
    for (int rep = 0; rep < 20; rep++) {
      auto ta = now();
      for (size_t c = 0; c < copies; c++) for (int r0 = 0; r0 < N; r0 += rows)
        k2->rows[ty](K, buf.data() + c * mb + (size_t)r0 * rb, rb, std::min(rows, N - r0), ty == 2 ? (const void*)a0.data() : a8.data(), out.data() + r0, true);
      best2 = std::min(best2, std::chrono::duration<double>(now() - ta).count());
      auto t0 = now();
      for (size_t c = 0; c < copies; c++) for (int r0 = 0; r0 < N; r0 += rows)
        kt->rows[ty](K, buf.data() + c * mb + (size_t)r0 * rb, rb, std::min(rows, N - r0), ty == 2 ? (const void*)a0.data() : a8.data(), out.data() + r0, true);
      auto t1 = now();
      __m512i s = _mm512_setzero_si512();
      for (size_t i = 0; i < copies * mb; i += 256) {
        s = _mm512_xor_si512(s, _mm512_loadu_si512(buf.data() + i)); s = _mm512_xor_si512(s, _mm512_loadu_si512(buf.data() + i + 64));
        s = _mm512_xor_si512(s, _mm512_loadu_si512(buf.data() + i + 128)); s = _mm512_xor_si512(s, _mm512_loadu_si512(buf.data() + i + 192));
      }
      volatile int sink = _mm512_reduce_add_epi32(s); (void)sink;
      auto t2 = now();
      best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
      ratios.push_back(std::chrono::duration<double>(t1 - t0).count() / std::chrono::duration<double>(t0 - ta).count());
      bwb = std::min(bwb, std::chrono::duration<double>(t2 - t1).count());
    }
    const double gb = copies * mb / best / 1e9, bw = copies * mb / bwb / 1e9;
    const double g2 = copies * mb / best2 / 1e9;
    std::sort(ratios.begin(), ratios.end());
    printf("  median per-pass time ratio (this table / avx2 table): %.3f\n", ratios[ratios.size() / 2]);
    printf("type %2d %dx%d: %s %.1f GB/s (%.0f%%), avx2 table %.1f GB/s (%.0f%%), read loop %.1f GB/s\n", ty, N, K, kt->isa, gb, 100 * gb / bw, g2, 100 * g2 / bw, bw);
  }
}
