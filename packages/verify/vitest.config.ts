import { createVitestConfig } from '@gumiho/vitest-config';

export default createVitestConfig();
