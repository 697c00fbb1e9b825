import { describeOpsConformance } from '@gumiho/conformance';
import { createOrtBackend } from './index.js';

// One intra-op thread without spinning: test suites share a 2-core machine.
describeOpsConformance('ort-cpu', () => createOrtBackend({ executionProviders: ['cpu'], threads: 1, spinning: false }));
