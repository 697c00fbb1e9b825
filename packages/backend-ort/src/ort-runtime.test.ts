import { GumihoError, type BackendUnavailableError } from '@gumiho/core';
import { describe, expect, it, vi } from 'vitest';

describe('loading onnxruntime-node', () => {
  it('reports a missing peer dependency as BackendUnavailableError with the install command', async () => {
    vi.resetModules();
    vi.doMock('onnxruntime-node', () => {
      throw new Error("Cannot find package 'onnxruntime-node'");
    });
    const { createOrtBackend } = await import('./index.js');
    const error = await createOrtBackend().catch((caught: unknown) => caught);
    // resetModules loads a second copy of @gumiho/core: check by marker and code, not instanceof.
    expect(GumihoError.isInstance(error)).toBe(true);
    expect((error as BackendUnavailableError).code).toBe('GUMIHO_BACKEND_UNAVAILABLE');
    expect((error as BackendUnavailableError).attempts[0]!.name).toBe('onnxruntime-node');
    expect((error as BackendUnavailableError).message).toContain('pnpm add onnxruntime-node@1.30.0');
    vi.doUnmock('onnxruntime-node');
  });
});
