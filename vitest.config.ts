import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Servers the tests start write their logs for people, as on a terminal; tests of the JSON
    // format ask for it with --log-format json.
    // Servers started from the same folder would share its .kiln/snapshot.json, and restore each
    // other's changes: the snapshot tests turn it back on, each in a folder of its own.
    // Servers started without --grpc-address (and the TorchServe gRPC flags) take free ports for their
    // gRPC APIs, never all 8085 (7070, 7071) at once.
    env: {
      KILN_LOG_FORMAT: 'pretty',
      KILN_SNAPSHOT: 'false',
      // The provider probe (a child process loading ONNX Runtime) runs only where a test asks for it.
      KILN_PROBE_PROVIDERS: 'false',
      KILN_GRPC_ADDRESS: '127.0.0.1:0',
      KILN_TS_GRPC_INFERENCE_ADDRESS: '127.0.0.1:0',
      KILN_TS_GRPC_MANAGEMENT_ADDRESS: '127.0.0.1:0',
    },
  },
});
