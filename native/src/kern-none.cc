// Architectures without hand-written kernels (arm64 until a NEON table exists): only the portable table.
#include "common.h"
namespace l4 {
const KernelTable* kernels_avx2() { return nullptr; }
const KernelTable* kernels_avx512() { return nullptr; }
}  // namespace l4
