/**
 * @packageDocumentation
 * `@gumiho/cli`: the `gumiho` command. Exported for tests and for tools that embed the command:
 * {@link runCli} runs a command line against given streams and returns its exit code; the
 * backend and policy maps are where new `--backend` and `--policy` names are registered.
 */
export { EXIT_BAD_INPUT, parseGenerateArgs, runCli, runGenerate } from './main.js';
export type { CliIo, GenerateCommand, OutputStream } from './main.js';
export { BACKENDS, DEFAULT_BACKEND, backendFactory, createBackend } from './backends.js';
export type { BackendFactory } from './backends.js';
export { DEFAULT_POLICY, POLICIES, createPolicy, policyFactory } from './policies.js';
export type { PolicyContext, PolicyFactory } from './policies.js';
