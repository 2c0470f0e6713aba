/** A request's API-neutral core now lives in the engine (src/engine/completion.ts), shared with ChatSession and the CLI. */
export {
  runGeneration,
  StopMatcher,
  type RunParams,
  type RunResult,
  type ChoiceOutput,
  type LogprobEntry,
  type DeltaListener,
} from '../engine/completion.ts';
