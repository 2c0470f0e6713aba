/** Runs the training-seam conformance suite (train-backend.case.test.ts) on the TypeScript and native backends. */
import '../train-backend.case.test.ts';
