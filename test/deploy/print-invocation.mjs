// Stands in for the kiln CLI (KILN_BIN) in docker-image.test.ts: prints, as one JSON line, the
// arguments entrypoint.sh ran it with and the variables it exported, instead of serving.
const names = Object.keys(process.env).filter((name) => name.startsWith('KILN_') || name === 'TS_CONFIG_FILE');
const env = Object.fromEntries(names.sort().map((name) => [name, process.env[name]]));
process.stdout.write(`${JSON.stringify({ argv: process.argv.slice(2), env })}\n`);
