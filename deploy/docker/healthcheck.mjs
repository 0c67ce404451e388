// The image's HEALTHCHECK: GET /ping on the inference API, sending the token when there is one.
// Exits 0 when /ping answers 200 (every model ready), 1 otherwise; what it prints is kept in
// `docker inspect --format '{{json .State.Health}}' <container>`.
//
// A health check runs with the container's environment, not with what entrypoint.sh exported, so the
// token is looked for where the entrypoint finds it, in the same order: KILN_TOKEN_FILE, KILN_TOKEN,
// the secret file ($KILN_SECRET_FILE, default /run/secrets/kiln-token), then the generated
// $KILN_STATE_DIR/token. A token named only in a config file (tokenFile) is not found: set
// KILN_TOKEN_FILE instead. With --health-auth off (KILN_HEALTH_AUTH=off) /ping needs no token, and
// the one sent is ignored.
//
// The address is KILN_HEALTHCHECK_URL (the inference API's base, such as http://127.0.0.1:8085), or
// else KILN_INFERENCE_ADDRESS with 0.0.0.0 read as 127.0.0.1, or else http://127.0.0.1:8080.
import { existsSync, readFileSync } from 'node:fs';

const env = process.env;
const set = (name) => (env[name] === undefined || env[name] === '' ? undefined : env[name]);

function base() {
  const url = new URL(set('KILN_HEALTHCHECK_URL') ?? set('KILN_INFERENCE_ADDRESS') ?? 'http://127.0.0.1:8080');
  // An API bound to every interface is reached on loopback.
  if (url.hostname === '0.0.0.0') url.hostname = '127.0.0.1';
  if (url.hostname === '[::]') url.hostname = '[::1]';
  return url;
}

/** The token's first line, as the server reads a token file. */
const firstLine = (file) => readFileSync(file, 'utf8').split('\n')[0].trim();

function token() {
  const named = set('KILN_TOKEN_FILE');
  if (named !== undefined) return firstLine(named);
  if (set('KILN_TOKEN') !== undefined) return env.KILN_TOKEN.trim();
  for (const file of [set('KILN_SECRET_FILE') ?? '/run/secrets/kiln-token', `${set('KILN_STATE_DIR') ?? '/var/lib/kiln'}/token`]) {
    if (existsSync(file)) return firstLine(file);
  }
  return undefined;
}

try {
  const url = new URL('ping', `${base().href.replace(/\/?$/, '/')}`);
  const secret = token();
  const response = await fetch(url, {
    headers: secret === undefined || secret === '' ? {} : { authorization: `Bearer ${secret}` },
    signal: AbortSignal.timeout(4000),
  });
  const body = (await response.text()).trim().slice(0, 500);
  console.log(`${url.href} ${response.status} ${body}`);
  process.exit(response.ok ? 0 : 1);
} catch (error) {
  console.log(`unhealthy: ${error instanceof Error ? (error.cause?.message ?? error.message) : String(error)}`);
  process.exit(1);
}
