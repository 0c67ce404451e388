import { defineConfig } from 'vitest/config';

// Its own config, so vitest does not pick up one from a folder above the project.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
  },
});
