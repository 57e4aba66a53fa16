import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { chromium } from 'playwright-core';
import { packageRoot } from '../../src/config/config.js';

// Debian's Chromium for the browser tests, driven by playwright-core (never a downloaded browser),
// with the flags this machine's closed network needs. Missing, the tests are skipped with a banner
// locally and fail under REQUIRE_SERVICES=1.

export const CHROMIUM = '/usr/bin/chromium';
/** Where the browser tests leave their screenshots (ignored by git). */
export const SCREENSHOTS = path.join(packageRoot(), 'test-output');

/** Why the browser tests cannot run here, or undefined. */
export const chromiumMissing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install -y chromium)`;
if (chromiumMissing && process.env.REQUIRE_SERVICES !== '1') console.error(`\n*** The browser tests are SKIPPED: ${chromiumMissing}. REQUIRE_SERVICES=1 turns this into a failure. ***\n`);

/** node:test options that skip a browser test where Chromium is missing, unless services are required. */
export const browserSkip: { skip?: string } = chromiumMissing && process.env.REQUIRE_SERVICES !== '1' ? { skip: chromiumMissing } : {};

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'],
  });
}
