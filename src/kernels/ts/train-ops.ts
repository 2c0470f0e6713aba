/** The TypeScript training backend: the reference beside the seam's interface (src/tensor/train-reference.ts). */
export { TsTrainBackend, matmulNT, transpose } from '../../tensor/train-reference.ts';
