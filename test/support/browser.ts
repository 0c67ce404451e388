import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium (.ci/run installs it); playwright-core never downloads a browser. */
export const CHROMIUM = process.env.KILN_CHROMIUM ?? '/usr/bin/chromium';

/** Without chromium only a local run may skip a browser test; in CI it fails. */
export const noBrowser = !existsSync(CHROMIUM) && process.env.CI === undefined;

/** Headless Chromium as root on a machine with no network: no sandbox, no GPU, nothing phoning home. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}
