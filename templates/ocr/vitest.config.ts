import { defineConfig } from 'vitest/config';

// Its own config, so vitest does not pick up one from a folder above the project.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    // Loading the 10 MB recognition model takes a few seconds on a slow machine.
    testTimeout: 60_000,
  },
});
