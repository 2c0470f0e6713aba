// The TypeScript reference backend against the shared conformance suite's float64 references.
import { TsBackend } from './backend.ts';
import { runBackendConformance } from '../backend.case.test.ts';
import { runVisionConformance } from '../backend-vision.case.test.ts';

// TsBackend does not check x/out lengths against the shapes (plain JS reads past the end give NaN, writes are dropped).
runBackendConformance('typescript', () => new TsBackend(), { checksLengths: false });
runVisionConformance('typescript', () => new TsBackend());
