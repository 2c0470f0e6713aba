// Peak VPDPBUSD (AVX-512 VNNI, 512-bit) throughput of one core: 12 independent accumulator chains, register
// operands, then with a broadcast memory operand (what the small-batch kernels use). It bounds the 8-sequence
// batched decode step: its dense q4_0 products are one VPDPBUSD per 64 multiply-adds (kern-avx512-batch.h).
// Build and run: g++ -O2 -mavx512f -mavx512bw -mavx512vnni -o /tmp/vnni-peak bench/vnni-peak.cc && /tmp/vnni-peak
#include <immintrin.h>
#include <chrono>
#include <cstdio>
int main() {
  __m512i a[12]; for (int i = 0; i < 12; i++) a[i] = _mm512_set1_epi32(i);
  __m512i b = _mm512_set1_epi32(0x01010101), c = _mm512_set1_epi32(0x02020202);
  const long N = 200000000;
  auto t0 = std::chrono::steady_clock::now();
  for (long n = 0; n < N; n++) {
    for (int i = 0; i < 12; i++) a[i] = _mm512_dpbusd_epi32(a[i], b, c);
    asm volatile("" : "+v"(b), "+v"(c));
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int x = 0; for (int i = 0; i < 12; i++) x += _mm512_reduce_add_epi32(a[i]);
  printf("%d: %.2f G VPDPBUSD/s (registers)\n", x & 1, N * 12 / s / 1e9);
  // with memory broadcast operand
  int32_t mem[64]; for (int i = 0; i < 64; i++) mem[i] = i;
  t0 = std::chrono::steady_clock::now();
  for (long n = 0; n < N / 2; n++) {
    for (int i = 0; i < 12; i++) a[i] = _mm512_dpbusd_epi32(a[i], b, _mm512_set1_epi32(mem[i]));
    asm volatile("" : "+v"(b) : : "memory");
  }
  s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  x = 0; for (int i = 0; i < 12; i++) x += _mm512_reduce_add_epi32(a[i]);
  printf("%d: %.2f G VPDPBUSD/s (broadcast memory operand)\n", x & 1, N / 2 * 12 / s / 1e9);
}
