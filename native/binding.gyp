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
          "target_name": "kern_avx512",
          "type": "static_library",
          "sources": ["src/kern-avx512.cc"],
          "cflags_cc": ["-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni", "-mbmi2", "-fPIC", "-Wno-maybe-uninitialized"],
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
          "target_name": "llama4_native",
          "sources": ["src/addon.cc", "src/ops.cc", "src/pool.cc", "src/kern-scalar.cc", "src/train-ops.cc"],
          "dependencies": ["kern_avx2", "kern_avx512", "train_avx2", "train_avx512"],
        },
      ],
    }, {
      "targets": [
        {
          "target_name": "llama4_native",
          "sources": ["src/addon.cc", "src/ops.cc", "src/pool.cc", "src/kern-scalar.cc", "src/kern-none.cc", "src/train-ops.cc"],
        },
      ],
    }],
  ],
}
