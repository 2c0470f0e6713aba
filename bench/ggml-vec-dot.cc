// Our i-quant row kernels (the AVX-512 table) against llama.cpp's own vec_dot kernels (libggml-cpu-zen4.so of the
// llama.cpp bundled with node-llama-cpp), same process, same quantized activations, hot in cache (1024 × 4096
// random blocks): best-of-30 time of each and the largest relative difference of the results (0 = same bits).
// Build and run from the project root (x86-64 with AVX-512; the zen4 library needs AVX-512 too):
//   S=native/src; F="-O3 -std=c++20 -I$S"
//   g++ $F -c $S/kern-avx2.cc -mavx2 -mfma -mf16c -o /tmp/k2.o
//   g++ $F -c $S/kern-avx512.cc -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mbmi2 -o /tmp/k5.o
//   g++ $F bench/ggml-vec-dot.cc /tmp/k2.o /tmp/k5.o -ldl -o /tmp/ggml-vec-dot && /tmp/ggml-vec-dot [type]
#include "common.h"
#include <dlfcn.h>
#include <chrono>
#include <cstdio>
#include <vector>
#include <random>
namespace l4 { int type_block_size(int t){ return t==20?32:256; } int type_block_bytes(int t){ switch(t){case 16:return 66;case 17:return 74;case 22:return 82;case 18:return 98;case 21:return 110;case 19:return 50;case 29:return 56;case 20:return 18;case 23:return 136;case 12:return 144;case 13:return 176;case 14:return 210;} return 0;} }
using namespace l4;
typedef void (*vdot_t)(int n, float* s, size_t bs, const void* x, size_t bx, const void* y, size_t by, int nrc);
typedef void (*qrow_t)(const float*, void*, int64_t);
int main(int argc, char** argv) {
  const char* d = "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/";
  dlopen((std::string(d)+"libggml-base.so").c_str(), RTLD_NOW|RTLD_GLOBAL);
  void* h = dlopen((std::string(d)+"libggml-cpu-zen4.so").c_str(), RTLD_NOW|RTLD_GLOBAL);
  if (!h) { printf("%s\n", dlerror()); return 1; }
  ((void(*)())dlsym(h, "ggml_cpu_init"))();
  const int K = 4096, N = 1024;
  std::mt19937 rng(1);
  struct T { const char* name; int id; const char* sym; };
  T types[] = {{"iq2_xxs",16,"ggml_vec_dot_iq2_xxs_q8_K"},{"iq4_xs",23,"ggml_vec_dot_iq4_xs_q8_K"},{"iq3_s",21,"ggml_vec_dot_iq3_s_q8_K"},{"iq2_xs",17,"ggml_vec_dot_iq2_xs_q8_K"},{"iq2_s",22,"ggml_vec_dot_iq2_s_q8_K"},{"iq3_xxs",18,"ggml_vec_dot_iq3_xxs_q8_K"},{"iq1_s",19,"ggml_vec_dot_iq1_s_q8_K"},{"iq1_m",29,"ggml_vec_dot_iq1_m_q8_K"},{"q4_k",12,"ggml_vec_dot_q4_K_q8_K"},{"q5_k",13,"ggml_vec_dot_q5_K_q8_K"},{"q6_k",14,"ggml_vec_dot_q6_K_q8_K"}};
  const KernelTable* kt = kernels_avx512();
  std::vector<float> x(K); for (auto& v : x) v = std::normal_distribution<float>()(rng);
  std::vector<uint8_t> act(K/256*sizeof(ActQ8K)); kt->quant_q8k(x.data(), act.data(), K);
  std::vector<uint8_t> a8(K/256*292); // ggml q8_K: float d; int8 qs[256]; int16 bsums[16]
  for (int b=0;b<K/256;b++){ const ActQ8K* s=(const ActQ8K*)act.data()+b; uint8_t* p=a8.data()+b*292; memcpy(p,&s->d,4); memcpy(p+4,s->qs,256); memcpy(p+260,s->bsums,32);}
  for (auto& t : types) {
    if (argc > 1 && strcmp(argv[1], t.name)) continue;
    vdot_t f = (vdot_t)dlsym(h, t.sym);
    const size_t rb = (size_t)K/256*type_block_bytes(t.id);
    std::vector<uint8_t> w(rb*N); for (auto& b : w) b = rng();
    for (int r=0;r<N;r++) for (int b=0;b<K/256;b++) { uint8_t* p=&w[r*rb+b*type_block_bytes(t.id)]; if (t.id==29){} else if (t.id==12||t.id==13){p[0]=0x00;p[1]=0x20;p[2]=0;p[3]=0x10;} else if (t.id==14){p[208]=0x00;p[209]=0x20;} else {p[0]=0x00;p[1]=0x20;} }
    std::vector<float> o1(N), o2(N);
    double best1=1e9,best2=1e9;
    for (int rep=0; rep<30; rep++) {
      auto t0=std::chrono::steady_clock::now();
      kt->rows[t.id](K, w.data(), rb, N, act.data(), o1.data(), true);
      auto t1=std::chrono::steady_clock::now();
      for (int r=0;r<N;r++) f(K, &o2[r], 0, w.data()+r*rb, 0, a8.data(), 0, 1);
      auto t2=std::chrono::steady_clock::now();
      best1=std::min(best1,std::chrono::duration<double>(t1-t0).count()); best2=std::min(best2,std::chrono::duration<double>(t2-t1).count());
    }
    double md=0; for (int r=0;r<N;r++) md=std::max(md,(double)fabs(o1[r]-o2[r])/(fabs(o2[r])+1e-3));
    printf("%-8s ours %.3f ms  ggml(zen4) %.3f ms  ratio %.2f  max rel diff %.2e\n", t.name, best1*1e3, best2*1e3, best2/best1, md);
  }
}
