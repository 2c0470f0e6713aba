# Native compute core of llama4-ts. Built by scripts/build-native.mjs (npm install) with node-gyp, offline.
# Each ISA's kernels are a separate static library with its own flags; the addon itself is baseline x86-64/arm64
# and picks a kernel table at run time (__builtin_cpu_supports). Never -march=native: the binary must run on any
# CPU of the architecture.
{
  "target_defaults": {
    "cflags_cc": ["-std=c++20", "-O3", "-fno-math-errno", "-fexceptions", "-Wall", "-Wno-unused-function"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++1y", "-O2"],
    "cflags!": ["-fno-exceptions", "-O2"],
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
  },
  "conditions": [
    ["target_arch=='x64'", {
      "targets": [
        {
          "target_name": "kern_avx2",
          "type": "static_library",
          "sources": ["src/kern-avx2.cc"],
          "cflags_cc": ["-mavx2", "-mfma", "-mf16c", "-fPIC"],
        },
        {
          # The AVX2 set's q4_0/q8_0 kernels with VPDPBUSD: AVX-VNNI (VEX), and the same source through
          # AVX512-VNNI's 256-bit form so that AVX-512 machines run the set's tests (kern-avx2-vnni.cc). A compiler
          # without -mavxvnni (GCC < 11) builds the VEX table as absent (probe-flag.sh) rather than failing.
          "target_name": "kern_avx2_vnni",
          "type": "static_library",
          "sources": ["src/kern-avx2-vnni.cc"],
          "cflags_cc": ["-mavx2", "-mfma", "-mf16c", "<!@(sh probe-flag.sh -mavxvnni)", "-fPIC"],
        },
        {
          "target_name": "kern_avx2_vnni_evex",
          "type": "static_library",
          "sources": ["src/kern-avx2-vnni-evex.cc"],
          "cflags_cc": ["-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512vl", "-mavx512vnni", "-fPIC"],
        },
        {
          "target_name": "kern_avx512",
          "type": "static_library",
          "sources": ["src/kern-avx512.cc"],
          "cflags_cc": ["-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni", "-mbmi2", "-fPIC", "-Wno-maybe-uninitialized"],
        },
        {
          "target_name": "kern_amx_int8",
          "type": "static_library",
          "sources": ["src/kern-amx-int8.cc"],
          "cflags_cc": ["-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "<!@(sh probe-flag.sh -mamx-tile)", "<!@(sh probe-flag.sh -mamx-int8)", "-fPIC", "-Wno-maybe-uninitialized"],
        },
        {
          "target_name": "kern_amx_int8_emu",
          "type": "static_library",
          "sources": ["src/kern-amx-int8.cc"],
          "cflags_cc": ["-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-DL4_AMX_EMULATE", "-fPIC", "-Wno-maybe-uninitialized"],
        },
        {
          "target_name": "kern_bf16",
          "type": "static_library",
          "sources": ["src/kern-bf16-avx512.cc"],
          "cflags_cc": ["-mavx2", "-mfma", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512bf16", "-fPIC"],
        },
        {
          "target_name": "kern_amx",
          "type": "static_library",
          "sources": ["src/kern-bf16-amx.cc"],
          "cflags_cc": ["-mavx2", "-mfma", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512bf16", "-mamx-tile", "-mamx-bf16", "-fPIC"],
        },
        {
          "target_name": "train_avx2",
          "type": "static_library",
          "sources": ["src/train-kern-avx2.cc"],
          "cflags_cc": ["-mavx2", "-mfma", "-fPIC"],
        },
        {
          "target_name": "train_avx512",
          "type": "static_library",
          "sources": ["src/train-kern-avx512.cc"],
          "cflags_cc": ["-mavx2", "-mfma", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-fPIC"],
        },
        {
          # The weight quantizers must round exactly as the TypeScript ones: no FMA contraction, no fast-math.
          "target_name": "quant",
          "type": "static_library",
          "sources": ["src/quant.cc"],
          "cflags_cc": ["-ffp-contract=off", "-fno-fast-math", "-fPIC"],
        },
        {
          # Its 8-lane scale search: AVX2 but deliberately no -mfma (same rounding as the scalar code).
          "target_name": "quant_avx2",
          "type": "static_library",
          "sources": ["src/quant-avx2.cc"],
          "cflags_cc": ["-mavx2", "-ffp-contract=off", "-fno-fast-math", "-fPIC"],
        },
        {
          "target_name": "llama4_native",
          "sources": ["src/addon.cc", "src/ops.cc", "src/ops-attention.cc", "src/repack.cc", "src/pool.cc", "src/kern-scalar.cc", "src/train-ops.cc"],
          "dependencies": ["kern_avx2", "kern_avx2_vnni", "kern_avx2_vnni_evex", "kern_avx512", "kern_amx_int8", "kern_amx_int8_emu", "kern_bf16", "kern_amx", "train_avx2", "train_avx512", "quant", "quant_avx2"],
        },
      ],
    }, {
      "targets": [
        {
          "target_name": "quant",
          "type": "static_library",
          "sources": ["src/quant.cc"],
          "cflags_cc": ["-ffp-contract=off", "-fno-fast-math", "-fPIC"],
        },
        {
          "target_name": "llama4_native",
          "sources": ["src/addon.cc", "src/ops.cc", "src/ops-attention.cc", "src/repack.cc", "src/pool.cc", "src/kern-scalar.cc", "src/kern-none.cc", "src/train-ops.cc"],
          "dependencies": ["quant"],
        },
      ],
    }],
  ],
}
