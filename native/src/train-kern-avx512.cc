// AVX-512 build of the training kernels (train-kern.h); compiled with -mavx512f etc. in its own static library.
#include "train-kern.h"
namespace l4 { namespace train_avx512 {
#include "train-kern-table.inc"
} }
