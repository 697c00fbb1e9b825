import { describeOpsConformance, describeTargetConformance } from '@gumiho/conformance';
import { createOrtBackend } from './index.js';

// One intra-op thread without spinning: test suites share a 2-core machine.
const create = () => createOrtBackend({ executionProviders: ['cpu'], threads: 1, spinning: false });

describeOpsConformance('ort-cpu', create);
// The golden suite runs the real py-llama-28m from the shared folder (skipped with a reason when absent).
describeTargetConformance('ort-cpu', create);
