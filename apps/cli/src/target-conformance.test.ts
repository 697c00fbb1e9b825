// The golden target suite on the pure-TypeScript backend. It lives here, in the app that
// assembles the parts, because it needs both @gumiho/models and @gumiho/backend-cpu, and
// backend-cpu's own tests depend on @gumiho/conformance (a package cycle otherwise).
import { createCpuBackend } from '@gumiho/backend-cpu';
import { describeTargetConformance } from '@gumiho/conformance';

describeTargetConformance('cpu', () => createCpuBackend());
