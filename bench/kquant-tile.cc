// Hot K-quant (and IQ4_XS) kernel check and timing: tile vs row kernel bit for bit at many token counts (plus the
// small-batch kernel), AVX-512 vs AVX2 tables, ns per super-block (rows) and per (super-block, token) (tiles, and
// tiles called as ops.cc chunks them: 16/32/64 rows x 32 tokens). Build from the project root like ggml-vec-dot.cc:
//   S=native/src; F="-O3 -std=c++20 -I$S"
//   g++ $F -c $S/kern-avx2.cc -mavx2 -mfma -mf16c -o /tmp/k2.o
//   g++ $F -c $S/kern-avx512.cc -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mbmi2 -o /tmp/k5.o
//   g++ $F bench/kquant-tile.cc /tmp/k2.o /tmp/k5.o -o /tmp/kquant-tile && /tmp/kquant-tile [type id, 0 = all] [K]
#include "common.h"
#include <chrono>
#include <cstdio>
#include <vector>
#include <random>
namespace l4 { int type_block_size(int){ return 256; } int type_block_bytes(int t){ return t==12?144:t==13?176:t==14?210:t==23?136:0; } }
using namespace l4;
int main(int argc, char** argv) {
  const int K = argc > 2 ? atoi(argv[2]) : 4096, N = 512, T = 64;
  std::mt19937 rng(7);
  int types[] = {12, 13, 14, 23};
  const KernelTable* k5 = kernels_avx512(); const KernelTable* k2 = kernels_avx2();
  std::vector<float> x((size_t)T*K); for (auto& v : x) v = std::normal_distribution<float>()(rng);
  const size_t ab = K/256*sizeof(ActQ8K);
  std::vector<uint8_t> act(ab*T); for (int t=0;t<T;t++) k5->quant_q8k(x.data()+(size_t)t*K, act.data()+t*ab, K);
  for (int ty : types) {
    if (argc > 1 && atoi(argv[1]) && atoi(argv[1]) != ty) continue;
    const int bb = type_block_bytes(ty); const size_t rb = (size_t)K/256*bb;
    std::vector<uint8_t> w(rb*N); for (auto& b : w) b = rng();
    for (int r=0;r<N;r++) for (int b=0;b<K/256;b++){ uint8_t* p=&w[r*rb+b*bb]; if (ty==14){p[208]=rng()&0xff;p[209]=0x20;} else if (ty==23){p[0]=rng();p[1]=0x20;} else {p[0]=rng();p[1]=0x20;p[2]=rng();p[3]=0x10;} }
    std::vector<float> o1((size_t)T*N), o2((size_t)T*N), o3((size_t)T*N);
    for (int t=0;t<T;t++) k5->rows[ty](K, w.data(), rb, N, act.data()+t*ab, o1.data()+(size_t)t*N, true);
    int bad = 0;
    for (int nt : {1,2,3,4,5,7,8,9,13,16,31,32,64}) {
      std::fill(o2.begin(), o2.end(), 0.f);
      for (int t0 = 0; t0 < T; t0 += nt) k5->tile[ty](K, w.data(), rb, N, act.data()+t0*ab, ab, std::min(nt, T-t0), o2.data()+(size_t)t0*N, N);
      for (size_t i=0;i<o1.size();i++) if (memcmp(&o1[i],&o2[i],4)) { if (bad<3) printf("type %d nt %d mismatch at %zu: %g %g\n", ty, nt, i, o1[i], o2[i]); bad++; }
      if (k5->batch[ty] && nt <= 16) { std::fill(o2.begin(), o2.end(), 0.f);
        for (int t0 = 0; t0 < T; t0 += nt) k5->batch[ty](K, w.data(), rb, N, act.data()+t0*ab, ab, std::min(nt, T-t0), o2.data()+(size_t)t0*N, N);
        for (size_t i=0;i<o1.size();i++) if (memcmp(&o1[i],&o2[i],4)) { if (bad<3) printf("type %d batch nt %d mismatch at %zu\n", ty, nt, i); bad++; } }
    }
    for (int t=0;t<T;t++) k2->rows[ty](K, w.data(), rb, N, act.data()+t*ab, o3.data()+(size_t)t*N, true);
    double md=0, mx=0; for (size_t i=0;i<o1.size();i++) mx=std::max(mx,(double)fabs(o3[i])); for (size_t i=0;i<o1.size();i++) md=std::max(md,(double)fabs(o1[i]-o3[i])/mx);
    auto tm=[&](auto f){ double b=1e9; for(int r=0;r<10;r++){ auto t0=std::chrono::steady_clock::now(); f(); b=std::min(b,std::chrono::duration<double>(std::chrono::steady_clock::now()-t0).count()); } return b; };
    const double sbs = (double)N*(K/256);
    double r5 = tm([&]{ k5->rows[ty](K, w.data(), rb, N, act.data(), o1.data(), true); });
    double r2 = tm([&]{ k2->rows[ty](K, w.data(), rb, N, act.data(), o1.data(), true); });
    double t5 = tm([&]{ for (int t0=0;t0<T;t0+=32) k5->tile[ty](K, w.data(), rb, N, act.data()+t0*ab, ab, 32, o2.data()+(size_t)t0*N, N); });
    double t2 = tm([&]{ for (int t0=0;t0<T;t0+=32) k2->tile[ty](K, w.data(), rb, N, act.data()+t0*ab, ab, 32, o2.data()+(size_t)t0*N, N); });
    double c5 = tm([&]{ for (int r0=0;r0<N;r0+=16) for (int t0=0;t0<T;t0+=32) k5->tile[ty](K, w.data()+r0*rb, rb, 16, act.data()+t0*ab, ab, 32, o2.data()+(size_t)t0*N+r0, N); });
    double c2 = tm([&]{ for (int r0=0;r0<N;r0+=16) for (int t0=0;t0<T;t0+=32) k2->tile[ty](K, w.data()+r0*rb, rb, 16, act.data()+t0*ab, ab, 32, o2.data()+(size_t)t0*N+r0, N); });
    double c64 = tm([&]{ for (int r0=0;r0<N;r0+=64) for (int t0=0;t0<T;t0+=32) k5->tile[ty](K, w.data()+r0*rb, rb, 64, act.data()+t0*ab, ab, 32, o2.data()+(size_t)t0*N+r0, N); });
    double c32 = tm([&]{ for (int r0=0;r0<N;r0+=32) for (int t0=0;t0<T;t0+=32) k5->tile[ty](K, w.data()+r0*rb, rb, 32, act.data()+t0*ab, ab, 32, o2.data()+(size_t)t0*N+r0, N); });
    printf("  ops-like chunks (16 rows x 32 tok): avx512 %.2f avx2 %.2f ns/(sb·tok); 32 rows %.2f, 64 rows %.2f\n", c5/sbs/T*1e9, c2/sbs/T*1e9, c32/sbs/T*1e9, c64/sbs/T*1e9);
    printf("type %d: bad %d  vs avx2 max diff/max %.2e | rows ns/sb avx512 %.2f avx2 %.2f | tile ns/(sb·tok) avx512 %.2f avx2 %.2f\n",
      ty, bad, md, r5/sbs*1e9, r2/sbs*1e9, t5/sbs/T*1e9, t2/sbs/T*1e9);
  }
}
