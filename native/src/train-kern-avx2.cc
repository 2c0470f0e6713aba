// AVX2 + FMA build of the training kernels (train-kern.h); compiled with -mavx2 -mfma in its own static library.
#include "train-kern.h"
namespace l4 { namespace train_avx2 {
#include "train-kern-table.inc"
} }
