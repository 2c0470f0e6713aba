/** `llama4-ts/train`: training small Llama 4 models (forward/backward, AdamW, checkpoints, BPE, DPO). */
export { TrainModel, type Param as TrainParam, type InitOptions as TrainInitOptions } from '../train/model.ts';
export { parseTrainConfig, type TrainModelConfig } from '../train/config.ts';
export { train, type TrainRunConfig, type TrainResult } from '../train/trainer.ts';
export { saveCheckpoint, loadCheckpoint } from '../train/checkpoint.ts';
export { AdamW, lrAt } from '../train/optim.ts';
export { trainBpe, BpeEncoder, toTokenizerJson } from '../train/bpe.ts';
export { dpoStep, type PrefPair } from '../train/dpo.ts';
