import { register } from 'node:module';

let registered = false;

/** Installs the resolve hook for handlers' external imports, once per process (Node ≥ 20.6). */
export function registerHandlerExternals(): void {
  if (registered) return;
  registered = true;
  register('./externals-hook.js', import.meta.url, { data: { parentURL: import.meta.url } });
}
