// Drives the roam-notify console in Debian's Chromium with playwright-core. Started by
// tests/it/console_browser.rs, which runs the daemon against a fake Roam, leaves one dead
// letter (message DEAD_ID) and one delivered message whose issue title carries HTML
// (message XSS_ID), then checks afterwards what the browser did (the retried message
// reached the fake Roam; the silence was stored, then expired).
//
// Environment: CONSOLE_URL, CONSOLE_TOKEN, DEAD_ID, XSS_ID, XSS_TITLE, EXPLAIN_PAYLOAD (a
// file), SCREENSHOTS (a directory, optional). Prints one line per step; exits 1 with the
// reason on the first failure.
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const base = env('CONSOLE_URL');
const token = env('CONSOLE_TOKEN');
const deadId = env('DEAD_ID');
const xssId = env('XSS_ID');
const xssTitle = env('XSS_TITLE');
const explainPayload = readFileSync(env('EXPLAIN_PAYLOAD'), 'utf8');
const shots = process.env.SCREENSHOTS;
if (shots) mkdirSync(shots, { recursive: true });

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-background-networking'],
});
let failed = false;
try {
  const context = await browser.newContext({ viewport: { width: 1180, height: 900 } });
  const page = await context.newPage();
  const dialogs = [];
  page.on('dialog', async (d) => {
    dialogs.push(d.message());
    await d.dismiss();
  });
  const shot = async (name, p = page) => {
    if (shots) await p.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  };
  const step = (s) => console.log(`step: ${s}`);

  // 1. Sign-in: a page asks for the token; a wrong one is refused; the right one lands
  //    where the visitor was going.
  await page.goto(`${base}/outbox?status=dead`);
  check(page.url().includes('/sign-in'), `redirected to sign-in, at ${page.url()}`);
  await shot('sign-in');
  await page.getByLabel('Admin token').fill('not-the-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const refusal = await page.getByRole('alert').textContent();
  check(refusal.includes('not the admin token'), `wrong token refused: ${refusal}`);
  await page.getByLabel('Admin token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/outbox\?status=dead$/);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'roam_notify_session');
  check(session && session.httpOnly && session.sameSite === 'Strict' && session.expires > 0, `session cookie ${JSON.stringify(session)}`);
  check(!(await page.evaluate(() => document.cookie)).includes('roam_notify_session'), 'cookie hidden from scripts');
  step('signed in');

  // Keyboard: the first Tab reaches the skip link.
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement?.textContent) === 'Skip to content', 'skip link first in tab order');

  // 2. Overview.
  await page.getByRole('link', { name: 'Overview' }).click();
  await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
  check(await page.locator('figure.chart svg').count() === 1, 'a chart');
  await shot('overview');
  const phone = await context.newPage();
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.goto(`${base}/`);
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `no sideways scrolling on a phone (overflow ${overflow}px)`);
  await shot('overview-phone', phone);
  await phone.close();
  step('overview');

  // 3. Outbox: the dead letter, its exact request, retried with a confirmation.
  await page.getByRole('link', { name: 'Outbox' }).click();
  await page.getByLabel('Status').selectOption('dead');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/status=dead/);
  check(await page.getByRole('link', { name: deadId, exact: true }).count() === 1, `dead message ${deadId} listed`);
  await shot('outbox');
  await page.getByRole('link', { name: deadId, exact: true }).click();
  await page.getByRole('heading', { name: `Message ${deadId}` }).waitFor();
  check(await page.locator('pre.json').textContent().then((t) => t.includes('"chat"')), 'the exact request');
  await shot('message');
  await page.getByText('Retry…').click();
  await page.getByRole('button', { name: `Yes, retry message ${deadId}` }).click();
  await page.getByRole('status').filter({ hasText: 'Re-queued' }).waitFor();
  for (let i = 0; i < 50; i++) {
    if (await page.locator('h1 .pill').textContent() === 'delivered') break;
    await page.waitForTimeout(100);
    await page.reload();
  }
  check(await page.locator('h1 .pill').textContent() === 'delivered', 'the retried message was delivered');
  step('dead letter retried and delivered');

  // 7. A payload's HTML shows as text, in the list and in the card preview.
  await page.goto(`${base}/outbox/${xssId}`);
  await page.locator('.message').waitFor();
  check(await page.locator('.message').textContent().then((t) => t.includes(xssTitle)), 'the title as text');
  check(await page.evaluate(() => window.__xss) === undefined, 'no script from the payload ran');
  check(await page.locator('.message script, .message img').count() === 0, 'no element from the payload');
  check(dialogs.length === 0, `no dialog (${dialogs})`);
  step('payload HTML shown as text');

  // 4. Silences: preview, add, expire.
  await page.getByRole('link', { name: 'Silences' }).click();
  await page.getByLabel('Source').selectOption('github');
  await page.getByLabel('Events (globs, comma-separated)').fill('github.issues.*');
  await page.getByLabel('Duration').fill('1h');
  await page.getByLabel('Comment (why)').fill('browser test: maintenance');
  await page.getByRole('button', { name: 'Preview' }).click();
  const preview = await page.locator('section.preview').textContent();
  check(/would have silenced\s*2\s*event/.test(preview), `preview counts the two issues events: ${preview}`);
  await shot('silences-preview');
  await page.getByRole('button', { name: 'Add silence' }).click();
  await page.getByRole('status').filter({ hasText: 'added' }).waitFor();
  const active = page.locator('section', { has: page.getByRole('heading', { name: 'Active' }) });
  check(await active.getByText('browser test: maintenance').count() === 1, 'the silence is active');
  await shot('silences');
  await active.getByRole('button', { name: /Expire silence/ }).click();
  await page.getByRole('status').filter({ hasText: 'expired' }).waitFor();
  const expired = page.locator('section', { has: page.getByRole('heading', { name: /Expired/ }) });
  check(await expired.getByText('browser test: maintenance').count() === 1, 'the silence is listed as expired');
  step('silence added and expired');

  // 5. Routing and explain.
  await page.getByRole('link', { name: 'Routing' }).click();
  check(await page.getByRole('heading', { name: 'all-github' }).count() === 1, 'the route is listed');
  await shot('routing');
  await page.getByRole('link', { name: 'Explain a payload →' }).click();
  await page.getByLabel('Source').selectOption('github');
  await page.getByLabel(/Headers, one per line/).fill('X-GitHub-Event: issues\nX-GitHub-Delivery: explain-1');
  await page.getByLabel('Payload').fill(explainPayload);
  await page.getByRole('button', { name: 'Explain' }).click();
  const result = page.locator('section.result');
  await result.waitFor();
  check(await result.getByRole('row', { name: /all-github\s+match/ }).count() === 1, 'all-github matches');
  check(await result.locator('.message').textContent().then((t) => t.includes('Spelling error in the README file')), 'the message rendered');
  await shot('explain');
  step('explain');

  // 6. Transcripts.
  await page.getByRole('link', { name: 'Transcripts' }).click();
  await page.getByRole('heading', { name: 'Transcripts', level: 1 }).waitFor();
  await shot('transcripts');
  step('transcripts');

  // Sign-out ends the session.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/sign-in/);
  await page.goto(`${base}/`);
  check(page.url().includes('/sign-in'), 'signed out');
  step('signed out');
} catch (e) {
  console.error(`FAILED: ${e.message}`);
  failed = true;
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
