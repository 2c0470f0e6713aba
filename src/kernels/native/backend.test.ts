// The native backend against the shared conformance suite, once per kernel set this CPU can run (so a CI machine
// with AVX-512 tests the AVX-512, AVX2 and scalar tables), with 2 threads, plus 1 thread for the best set.
// Without the addon every case is skipped with the reason (the TypeScript backend is then what runs).
import { nativeIsas, tryCreateNativeBackend } from './index.ts';
import { runBackendConformance } from '../backend.case.test.ts';
import { runVisionConformance } from '../backend-vision.case.test.ts';

// On CPUs without AMX, the AMX-INT8 tiles run with their tile operations emulated (native/src/kern-amx-int8.cc), so
// their layouts and float steps meet the suite everywhere; where AMX exists, "avx512-amx" is listed anyway.
process.env.LLAMA4_AMX_EMULATION ??= '1';
const isas = nativeIsas();
if (isas.length === 0) runBackendConformance('native', () => tryCreateNativeBackend().reason || 'native core unavailable');
for (const isa of isas) {
  runBackendConformance(`native-${isa}`, () => tryCreateNativeBackend({ isa, threads: 2 }).backend ?? `native ${isa} unavailable`);
  runVisionConformance(`native-${isa}`, () => tryCreateNativeBackend({ isa, threads: 2 }).backend ?? `native ${isa} unavailable`);
}
if (isas.length) runBackendConformance(`native-${isas[0]}-1thread`, () => tryCreateNativeBackend({ threads: 1 }).backend ?? 'unavailable');
if (isas.length) runVisionConformance(`native-${isas[0]}-1thread`, () => tryCreateNativeBackend({ threads: 1 }).backend ?? 'unavailable');
