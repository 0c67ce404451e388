#!/usr/bin/env node
// Stack traces from bundled handlers point at their TypeScript sources.
process.setSourceMapsEnabled(true);
// ONNX Runtime's Linux build carries a telemetry client; Kiln sends nothing anywhere unless told.
// Set before ONNX Runtime loads, here and in every worker (they inherit the environment).
process.env.ORT_DISABLE_TELEMETRY ??= '1';
const { main } = await import('../dist/main.js');
process.exitCode = await main(process.argv.slice(2));
