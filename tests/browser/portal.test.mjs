// The browser test: HQ, the monolith, iridium and magnesite run as their own
// binaries on loopback; headless Chromium (Debian's, driven by
// playwright-core) signs in to HQ's key portal with the admin credential,
// issues a key (which the monolith is then started with), subscribes each
// service with the portal's buttons and watches them confirm, publishes
// orders, and checks that the dashboard's figures are /totals' and
// /reconciliation's. Screenshots go to target/browser/.
//
// Run by scripts/test after the binaries are built (BIN_DIR, default
// target/debug); CHROMIUM overrides /usr/bin/chromium.

import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const binDir = path.resolve(root, process.env.BIN_DIR || 'target/debug');
const outDir = path.join(root, 'target/browser');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const ADMIN_TOKEN = `browser-test-${randomBytes(16).toString('hex')}`;
const HOOK_SECRET = `browser-test-hook-${randomBytes(16).toString('hex')}`;
const TIMEOUT_MS = 30_000;

const children = [];
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'interstella-browser-'));

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function start(name, env) {
  const child = spawn(path.join(binDir, name), [], {
    env: { PATH: process.env.PATH, RUST_LOG: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'inherit'], // stdout: hq's closing reconciliation
  });
  child.on('exit', (code, signal) => {
    if (!stopping && !child.stopped) console.error(`${name} exited early (code ${code}, signal ${signal})`);
  });
  children.push(child);
  return child;
}

let stopping = false;
function stopAll() {
  stopping = true;
  for (const child of children) child.kill('SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
}

// Polls `probe` until it returns something truthy, or fails after the deadline.
async function waitUntil(what, probe, timeoutMs = TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function up(url) {
  return waitUntil(`${url} to answer`, async () => (await fetch(url)).ok);
}

function assertEqual(actual, expected, what) {
  if (String(actual) !== String(expected)) throw new Error(`${what}: dashboard shows ${actual}, HQ says ${expected}`);
  console.log(`  ok  ${what} = ${expected}`);
}

async function main() {
  mkdirSync(outDir, { recursive: true });
  const [hqPort, monolithPort, iridiumPort, magnesitePort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const hqUrl = `http://127.0.0.1:${hqPort}`;
  const admin = { Authorization: `Bearer ${ADMIN_TOKEN}` };
  const hqJson = async (p) => (await fetch(`${hqUrl}${p}`, { headers: admin })).json();

  const hq = start('hq', {
    HQ_LISTEN: `127.0.0.1:${hqPort}`,
    HQ_DATA_DIR: dataDir,
    HQ_ADMIN_TOKEN: ADMIN_TOKEN,
    HQ_RETRY_MIN_DELAY_MS: '100',
    HQ_RETRY_MAX_DELAY_MS: '500',
  });
  await up(`${hqUrl}/topics`);

  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    chromiumSandbox: false, // root in CI: --no-sandbox
    args: ['--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
  });
  try {
    // A fresh context: a fresh profile, nothing remembered.
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems = [];
    let signedIn = false;
    let hqDown = false;
    page.on('console', (message) => {
      // A 401 before signing in is expected, and failed calls once HQ is
      // stopped; a 401 after it, and CSP violations and script errors at
      // any time, are not.
      const expected = (!signedIn && message.text().includes('401')) || hqDown;
      if (message.type() === 'error' && !expected) problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));

    console.log('portal: sign in, issue a key');
    await page.goto(`${hqUrl}/`);
    await page.getByRole('heading', { name: 'Interstella API Key Portal' }).waitFor();
    await page.fill('#admin-token', ADMIN_TOKEN);
    await page.click('#credential-form button');
    await page.getByText('Signed in').waitFor();
    signedIn = true;
    await page.fill('#owner', 'browser test');
    await page.getByRole('button', { name: 'Get a key' }).click();
    await page.locator('#api-key').waitFor({ state: 'visible', timeout: TIMEOUT_MS });
    const apiKey = (await page.locator('#api-key').textContent()).trim();
    if (!apiKey.startsWith('isk_')) throw new Error(`no key shown: ${apiKey}`);

    console.log('services: started with the key the portal issued');
    const sns = { AWS_ENDPOINT_URL_SNS: `${hqUrl}/`, GLUE_HOOK_SECRET: HOOK_SECRET };
    start('monolith', {
      ...sns,
      PORT: String(monolithPort),
      INTERSTELLA_API_KEY: apiKey,
      INTERSTELLA_API_ENDPOINT: `${hqUrl}/receiving/`,
      STRANGLED: 'iridium', // bundles: magnesite gathered here, iridium left to its microservice
    });
    for (const [name, port] of [['iridium', iridiumPort], ['magnesite', magnesitePort]]) {
      start(name, { ...sns, PORT: String(port), monolithUrl: `127.0.0.1:${monolithPort}` });
    }
    await up(`http://127.0.0.1:${monolithPort}/`);
    await up(`http://127.0.0.1:${iridiumPort}/iridium/`);
    await up(`http://127.0.0.1:${magnesitePort}/magnesite/`);

    console.log('portal: subscribe each service, watch them confirm');
    const endpoints = [
      ['Orders', `http://127.0.0.1:${monolithPort}/order/`],
      ['Iridium', `http://127.0.0.1:${iridiumPort}/iridium/`],
      ['Magnesite', `http://127.0.0.1:${magnesitePort}/magnesite/`],
    ];
    for (const [topic, endpoint] of endpoints) {
      await page.fill('#endpoint', endpoint);
      await page.getByRole('button', { name: `Subscribe to ${topic} topic` }).click();
      await page.getByText('pending confirmation.').waitFor();
    }
    await waitUntil('three confirmed subscriptions on the page', async () =>
      (await page.locator('#subscriptions tr[data-state="confirmed"]').count()) === 3);
    // Subscribing an endpoint again gives back its one subscription, confirmed.
    await page.fill('#endpoint', endpoints[0][1]);
    await page.getByRole('button', { name: 'Subscribe to Orders topic' }).click();
    await page.getByText('is already subscribed and confirmed.').waitFor();
    assertEqual(await page.locator('#subscriptions tr[data-topic="orders"]').count(), 1, 'subscriptions to orders');
    await page.screenshot({ path: path.join(outDir, 'portal.png'), fullPage: true });

    console.log('orders: one from the portal, the rest by the API');
    await page.fill('#publish-body', '{"bundle": 2}');
    await page.getByRole('button', { name: 'Publish' }).click();
    await page.getByText('Published ').waitFor();
    const orders = [['orders', '{"bundle": 1}'], ['orders', '{"bundle": 3}'], ['iridium', '{"iridium": 2}'],
      ['iridium', '{"iridium": 1}'], ['iridium', '{"iridium": 4}'], ['magnesite', '{"magnesite": 2}'], ['magnesite', '{"magnesite": 5}']];
    for (const [topic, order] of orders) {
      const response = await fetch(`${hqUrl}/topics/${topic}/publish`, { method: 'POST', headers: admin, body: order });
      if (response.status !== 201) throw new Error(`publish ${topic}: ${response.status}`);
    }
    const published = orders.length + 1;
    const reconciliation = await waitUntil('every order fulfilled', async () => {
      const r = await hqJson('/reconciliation');
      return r.published === published && r.fulfilled === published ? r : null;
    });

    console.log("portal: the key's totals");
    await page.getByRole('button', { name: 'Show totals' }).click();
    const totals = await hqJson('/totals');
    const mine = totals.find((t) => t.owner === 'browser test');
    await waitUntil("the key's totals on the page", async () => (await page.locator('#my-iridium').textContent()) === String(mine.iridium));
    assertEqual(await page.locator('#my-magnesite').textContent(), mine.magnesite, "portal: the key's magnesite");

    console.log('dashboard: the figures are /totals and /reconciliation');
    await page.goto(`${hqUrl}/dashboard`);
    await waitUntil('the dashboard to show every order', async () =>
      (await page.locator('#recon-fulfilled').textContent()) === String(published));
    for (const field of ['published', 'fulfilled', 'lost', 'duplicated', 'unrouted']) {
      assertEqual(await page.locator(`#recon-${field}`).textContent(), reconciliation[field], `reconciliation ${field}`);
    }
    for (const [topic, counts] of Object.entries(reconciliation.topics)) {
      for (const field of ['published', 'fulfilled', 'lost', 'duplicated', 'unrouted']) {
        const cell = page.locator(`#topics tr[data-topic="${topic}"] td[data-field="${field}"]`);
        assertEqual(await cell.textContent(), counts[field], `${topic} ${field}`);
      }
    }
    const sum = (field) => totals.reduce((total, t) => total + t[field], 0);
    for (const field of ['fulfillments', 'iridium', 'magnesite', 'replays']) {
      assertEqual(await page.locator(`#totals-${field}`).textContent(), sum(field), `totals ${field}`);
    }
    await page.getByText('Nothing lost, nothing counted twice.').waitFor();
    // The strangling: iridium only from its microservice (the monolith has
    // it strangled), magnesite from both.
    const bars = async (resource, source) => page.locator(`#chart-${resource} rect.${source}`).count();
    if ((await bars('iridium', 'microservice')) === 0 || (await bars('iridium', 'monolith')) !== 0) {
      throw new Error('the iridium chart should show the microservice alone');
    }
    if ((await bars('magnesite', 'microservice')) === 0 || (await bars('magnesite', 'monolith')) === 0) {
      throw new Error('the magnesite chart should show the monolith and the microservice');
    }
    console.log('  ok  the charts show who produced what');
    await page.screenshot({ path: path.join(outDir, 'dashboard.png'), fullPage: true });

    console.log('dashboard: fits a phone-sized window');
    await page.setViewportSize({ width: 375, height: 800 });
    for (const page_ of ['/dashboard', '/']) {
      await page.goto(`${hqUrl}${page_}`);
      await page.locator('body.signed-in').waitFor();
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      if (width > 375) throw new Error(`${page_} is ${width} px wide in a 375 px window`);
    }
    await page.screenshot({ path: path.join(outDir, 'portal-375.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });

    console.log('dashboard: a credential HQ no longer takes is dropped, and the polling stops');
    signedIn = false;
    await page.goto(`${hqUrl}/dashboard`);
    await page.evaluate(() => sessionStorage.setItem('interstella-hq-admin-token', 'not-the-credential'));
    let polls = 0;
    page.on('request', (request) => {
      if (request.url().includes('/dashboard/data')) polls += 1;
    });
    await page.reload();
    await page.getByText('HQ no longer takes that credential').waitFor();
    // Not a wait for something to happen but a window in which nothing may:
    // longer than a poll's period (2 s), so a timer left running would ask again.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    assertEqual(polls, 1, 'calls with the rejected credential');
    await page.fill('#admin-token', ADMIN_TOKEN);
    await page.click('#credential-form button');
    await page.getByText('Signed in').waitFor();
    signedIn = true;
    await waitUntil('the figures again', async () =>
      (await page.locator('#recon-fulfilled').textContent()) === String(published));

    console.log('dashboard: with HQ gone, the figures stay, dimmed, with their time');
    hqDown = true;
    hq.stopped = true;
    hq.kill('SIGTERM');
    await page.locator('body.stale').waitFor({ timeout: TIMEOUT_MS });
    const said = await page.locator('#updated').textContent();
    if (!/^figures from \d\d:\d\d:\d\d UTC, not updated: /.test(said)) throw new Error(`#updated says ${JSON.stringify(said)}`);
    assertEqual(await page.locator('#updated').getAttribute('class'), 'error', '#updated class');
    assertEqual(await page.locator('#recon-fulfilled').textContent(), published, 'figures kept');
    await page.screenshot({ path: path.join(outDir, 'dashboard-hq-down.png'), fullPage: true });
    if (problems.length) throw new Error(`the pages logged errors: ${problems.join(' | ')}`);
    console.log(`browser test passed; screenshots in ${path.relative(root, outDir)}/`);
  } finally {
    await browser.close();
  }
}

main()
  .then(() => {
    stopAll();
    process.exit(0);
  })
  .catch((error) => {
    console.error(`browser test FAILED: ${error.stack || error}`);
    stopAll();
    process.exit(1);
  });
