// The console in a real browser: Debian's chromium driven by playwright-core
// (pinned in ../package.json), on a phone-sized page. infra/console's Go test
// starts a devstack, creates the client, sensor and user, and runs this
// script with BROWSER_TEST (JSON, see below) in its environment. When the
// script needs readings published it prints "@@ publish" and waits for a
// line on stdin: the Go side publishes them over MQTT as the device, and
// answers once the broker has acknowledged them.
//
// Every step fails the run (exit status 1, the step and the reason on
// stderr); so does any console error, uncaught exception or CSP violation
// the page reports at any time. Steps print "@@ step <name>" as they start.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { chromium } from 'playwright-core';

/**
 * @typedef {object} Config
 * @property {string} url the console page (…/console)
 * @property {string} chromium the browser binary
 * @property {string} client the client's slug (the login's company)
 * @property {string} clientName
 * @property {string} email a client admin's
 * @property {string} password
 * @property {string} viewerEmail a viewer's, of the same client
 * @property {string} viewerPassword
 * @property {string} sensorName
 * @property {number} alertHigh the sensor's high limit
 * @property {boolean} alarms run the steps that need the alarms API and alarms opening at
 *   ingest: the alarm list, its acknowledgement, and the sensor page (its chart shades alarms)
 * @property {boolean} exports run the CSV export step (on the sensor page: alarms too)
 */

/** @type {Config} */
const cfg = JSON.parse(process.env.BROWSER_TEST || '{}');
const phone = { width: 390, height: 844 };
const timeout = 15_000;

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** Problems the page reported: console errors, exceptions, CSP violations. */
const problems = [];
let step = 'start';

/** @type {import('playwright-core').Page | null} */
let current = null;
let shots = 0;

/**
 * With BROWSER_TEST_SCREENSHOTS set, saves the page as the step left it
 * there (to look at the layout a phone gets).
 */
async function shoot() {
  const dir = process.env.BROWSER_TEST_SCREENSHOTS;
  if (!dir || !current) return;
  await current.screenshot({ path: join(dir, `${String(++shots).padStart(2, '0')}-${step.replace(/[^a-z0-9]+/gi, '-')}.png`), fullPage: true });
}

/**
 * Starts a step, the last one's screenshot taken (shoot).
 * @param {string} name
 */
async function begin(name) {
  await shoot();
  step = name;
  console.log(`@@ step ${name}`);
}

/** @param {string} msg */
function fail(msg) {
  throw new Error(`${step}: ${msg}`);
}

/** @param {import('playwright-core').Page} page */
async function noHorizontalOverflow(page) {
  const { scroll, inner } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  if (scroll > inner) fail(`the page is ${scroll} px wide in a ${inner} px window (it scrolls sideways)`);
}

/** @param {import('playwright-core').Page} page */
function checkProblems(page) {
  if (problems.length) fail(`the page reported ${problems.length} problem(s) on ${page.url()}:\n  ${problems.join('\n  ')}`);
}

/**
 * Waits for a line on stdin (the Go side's answer).
 * @param {string} want
 */
async function answer(want) {
  const { value, done } = await lines.next();
  if (done || value.trim() !== want) fail(`expected "${want}" from the test, got ${done ? 'the end of input' : JSON.stringify(value)}`);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: cfg.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const downloads = await mkdtemp(join(tmpdir(), 'console-downloads-'));
  try {
    const context = await browser.newContext({ viewport: phone, acceptDownloads: true, timezoneId: 'Europe/Berlin', locale: 'en-GB' });
    context.setDefaultTimeout(timeout);
    // Runs before the page's own scripts (through the DevTools protocol, so
    // the CSP does not apply to it): every violation becomes a console error.
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber}`);
      });
    });
    const page = await context.newPage();
    current = page;
    page.on('console', (m) => {
      if (m.type() === 'error') report(`console error: ${m.text()}`);
    });
    page.on('pageerror', (e) => report(`uncaught: ${e.message}`));

    await begin('logged out: the login page, no nav');
    await page.goto(cfg.url);
    await page.getByRole('heading', { name: 'Log in' }).waitFor();
    if (await page.locator('#nav').isVisible()) fail('the nav shows while logged out');
    await noHorizontalOverflow(page);

    await begin('the CSP check sees a violation');
    // An inline style the CSP refuses, set by the page's context: the
    // checks below would miss real violations if this one went unseen.
    await page.evaluate(() => {
      const p = document.createElement('p');
      p.setAttribute('style', 'color: red');
      document.body.append(p);
      p.remove();
    });
    await reported((p) => p.includes('CSP violation: style-src'), 'the probe\'s inline style to be reported');
    problems.length = 0;

    await begin('log in through the page');
    await logIn(page, cfg.email, cfg.password);
    await page.getByRole('heading', { name: 'Clients' }).waitFor();
    await noHorizontalOverflow(page);
    checkProblems(page);

    await begin('the client\'s sensors, with status and last seen');
    await page.getByRole('link', { name: cfg.clientName }).click();
    const sensorRow = page.locator('tr', { has: page.getByRole('link', { name: cfg.sensorName }) });
    await sensorRow.waitFor();
    await sensorRow.locator('.badge').waitFor();
    await noHorizontalOverflow(page);
    checkProblems(page);

    if (cfg.alarms) {
      await begin('alarms: none before the readings');
      await page.getByRole('link', { name: 'Alarms', exact: true }).click();
      await page.getByRole('heading', { name: 'Alarms' }).waitFor();
      await page.getByText('No alarms.').waitFor();
      await noHorizontalOverflow(page);

      await begin('readings above the high limit open an alarm');
      console.log('@@ publish');
      await answer('published');
      const alarmRow = page.locator('tr.alarm-open', { hasText: cfg.sensorName });
      // The alarm opens when ingest has stored the readings, which the
      // broker's acknowledgement does not wait for: the list is asked again
      // until it shows the alarm. Each load is awaited to its last row: it
      // asks once per state, so its first answer is not the end of it, and a
      // load still drawing would replace the row the comment is typed into.
      const deadline = Date.now() + timeout;
      const busyList = page.locator('[aria-busy="true"]');
      while (!(await alarmRow.count())) {
        if (Date.now() > deadline) fail('no open alarm listed for the sensor');
        await page.getByRole('button', { name: 'Filter' }).click();
        await busyList.waitFor({ state: 'detached' });
      }
      await alarmRow.getByText('above the high limit').waitFor();
      await noHorizontalOverflow(page);
      checkProblems(page);

      await begin('acknowledge the alarm with a comment');
      await alarmRow.getByLabel('Comment').fill('Door closed, goods checked');
      await alarmRow.getByRole('button', { name: 'Acknowledge' }).click();
      await alarmRow.getByText('Acknowledged by you').waitFor();
      await alarmRow.getByText('Door closed, goods checked').waitFor();
      if (!(await alarmRow.getByText('Europe/Berlin').count())) fail('the acknowledgement\'s time names no zone');
      checkProblems(page);

      await begin('the sensor is in alarm in the client\'s list');
      await page.getByRole('link', { name: 'Clients', exact: true }).click();
      await page.getByRole('link', { name: cfg.clientName }).click();
      await sensorRow.locator('.badge', { hasText: 'in alarm' }).waitFor();

      await begin('the sensor\'s chart, with its limit and alarm periods');
      await page.getByRole('link', { name: cfg.sensorName }).click();
      await page.getByRole('heading', { name: cfg.sensorName }).waitFor();
      const chart = page.locator('svg.chart');
      await chart.waitFor();
      await chart.locator('line.limit-high').waitFor({ state: 'attached' });
      await chart.locator('path.series').waitFor({ state: 'attached' });
      await chart.locator('rect.band-high').waitFor({ state: 'attached' });
      if (!(await chart.getByText('time (Europe/Berlin)').count())) fail('the chart\'s time axis names no zone');
      await noHorizontalOverflow(page);
      checkProblems(page);
    }

    if (cfg.alarms && cfg.exports) {
      await begin('export the chart\'s readings as CSV');
      const { name, rows } = await download(page, downloads, 'Export CSV');
      if (!rows[0].startsWith('measured_at')) fail(`the export's header is ${JSON.stringify(rows[0])}`);
      if (rows.length < 4) fail(`the export has ${rows.length - 1} readings, want the 3 published`);
      if (!name.endsWith('.csv')) fail(`the download is named ${name}`);
      await page.getByText(`Saved ${name}.`).waitFor();
      checkProblems(page);

      await begin('export the chart\'s days as daily statistics');
      const { rows: days } = await download(page, downloads, 'Export daily statistics');
      if (!days[0].startsWith('day,') || !days[0].includes(',mkt_c,')) fail(`the daily export's header is ${JSON.stringify(days[0])}`);
      if (days.length < 2) fail('the daily export has no day, want the day of the published readings');
      checkProblems(page);
    }

    if (cfg.alarms) {
      await begin('log out; a viewer sees the alarm settings read-only');
      await logOut(page);
      await logIn(page, cfg.viewerEmail, cfg.viewerPassword);
      await page.getByRole('link', { name: cfg.clientName }).click();
      await page.getByRole('link', { name: cfg.sensorName }).click();
      await page.locator('dl.settings').waitFor();
      if (await page.getByRole('button', { name: 'Save settings' }).count()) fail('a viewer is offered to save the alarm settings');
      await page.locator('svg.chart').waitFor();
      await noHorizontalOverflow(page);
      checkProblems(page);
    }

    await begin('log out: the nav is hidden again');
    await logOut(page);
    await noHorizontalOverflow(page);
    checkProblems(page);
    await shoot();
    console.log('@@ done');
  } finally {
    await browser.close();
    await rm(downloads, { recursive: true, force: true });
  }
}

/**
 * Clicks the button that downloads a CSV file and reads the file saved in dir.
 * @param {import('playwright-core').Page} page
 * @param {string} dir
 * @param {string} button the button's name
 * @returns {Promise<{ name: string, rows: string[] }>} the file's suggested name and its lines
 */
async function download(page, dir, button) {
  const [d] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: button }).click(),
  ]);
  const saved = join(dir, d.suggestedFilename());
  await d.saveAs(saved);
  return { name: d.suggestedFilename(), rows: (await readFile(saved, 'utf8')).trim().split(/\r?\n/) };
}

/**
 * Logs in through the login form as email.
 * @param {import('playwright-core').Page} page
 * @param {string} email
 * @param {string} password
 */
async function logIn(page, email, password) {
  await page.getByLabel('Company').fill(cfg.client);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#who').filter({ hasText: email }).waitFor();
  if (!(await page.locator('#nav').isVisible())) fail('no nav after logging in');
}

/**
 * Logs out with the header's button: the login page shows, the nav does not.
 * @param {import('playwright-core').Page} page
 */
async function logOut(page) {
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  if (await page.locator('#nav').isVisible()) fail('the nav shows after logging out');
}

/** @type {(() => void)[]} */
const onReport = [];

/** @param {string} p */
function report(p) {
  problems.push(p);
  for (const wake of onReport.splice(0)) wake();
}

/**
 * Waits until a reported problem satisfies match, or fails after the timeout.
 * @param {(p: string) => boolean} match
 * @param {string} what
 */
async function reported(match, what) {
  const deadline = Date.now() + timeout;
  while (!problems.some(match)) {
    const left = deadline - Date.now();
    if (left <= 0) fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, left);
      onReport.push(() => {
        clearTimeout(timer);
        resolve(undefined);
      });
    });
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(`browser test failed: ${err.message}`);
  process.exit(1);
});
