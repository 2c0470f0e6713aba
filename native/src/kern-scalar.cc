// Portable kernels: every type through the generic dequantize-and-dot path. Compiled with no ISA flags, so this
// table runs on any CPU (and is the reference the SIMD tables are tested against).
#include "common.h"

namespace l4 {
namespace scalar {
#include "kern-generic.h"
#include "kern-iquant.h"
}  // namespace scalar

const KernelTable* kernels_scalar() {
  static KernelTable t = [] { KernelTable k{}; k.isa = "scalar"; scalar::fill_generic(k); scalar::fill_iquant(k); return k; }();
  return &t;
}
}  // namespace l4
