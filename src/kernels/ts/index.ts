export { TsBackend, erf } from './backend.ts';
