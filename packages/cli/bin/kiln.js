#!/usr/bin/env node
// Stack traces from bundled handlers point at their TypeScript sources.
process.setSourceMapsEnabled(true);
const { main } = await import('../dist/main.js');
process.exitCode = await main(process.argv.slice(2));
