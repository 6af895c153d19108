// The web UI in a real browser: Debian's Chromium driven by playwright-core, against a real
// `driftless serve` following a real Git repository (file://), with real tokens made by
// `driftless token create`. Started by ctest (test/CMakeLists.txt):
//
//   node ui/test/e2e.mjs DRIFTLESS_BINARY SCREENSHOT_DIR
//
// Screenshots go to $DRIFTLESS_UI_SCREENSHOTS when it is set (docs/ui/), else to SCREENSHOT_DIR.
// Every wait is for what the page or the server shows, with a generous deadline; nothing sleeps.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [bin, shotDirArg] = process.argv.slice(2);
if (!bin || !existsSync(bin)) {
  console.error('usage: node e2e.mjs DRIFTLESS_BINARY [SCREENSHOT_DIR]');
  process.exit(2);
}
const chromiumPath = process.env.DRIFTLESS_CHROMIUM ?? '/usr/bin/chromium';
if (!existsSync(chromiumPath)) {
  console.error(`e2e: no Chromium at ${chromiumPath}: scripts/setup.sh installs Debian's chromium`);
  process.exit(1);
}
const shots = process.env.DRIFTLESS_UI_SCREENSHOTS || shotDirArg || join(tmpdir(), 'driftless-ui-shots');
mkdirSync(shots, { recursive: true });
const kPatience = 30000; // a deadline for what must happen, never a measured time

// ---- a repository, its bare origin, the state and the tokens ----
const box = mkdtempSync(join(tmpdir(), 'driftless-ui-'));
const repo = join(box, 'repo');
const root = join(box, 'root');
const statePath = join(box, 'state.db');
mkdirSync(repo);
const git = (...args) => execFileSync('git', ['-c', 'user.name=dev', '-c', 'user.email=dev@example.com', ...args], { cwd: repo, stdio: 'pipe' });
writeFileSync(join(repo, 'app.yaml'), 'kind: file.file\nname: app\ntarget: host\nspec: {path: app.conf, content: "one"}\n');
writeFileSync(join(repo, 'driftless.yaml'),
  'project: shop\nenvironments:\n' +
  '  - branch: main\n    name: production\n    protected: true\n    approvals: 1\n' +
  '  - branch: staging\n    name: staging\n    sync: auto\n' +
  `targets:\n  host: {provider: file, root: "${root}/\${env}"}\n`);
git('init', '-q', '-b', 'main');
git('add', '-A');
git('commit', '-q', '-m', 'first');
git('branch', 'staging');
execFileSync('git', ['clone', '-q', '--bare', repo, join(box, 'origin.git')]);
const cli = (...args) => execFileSync(bin, [...args, '--dir', repo, '--state', statePath], { encoding: 'utf8' });
const token = (role, name) => cli('token', 'create', '--role', role, '--name', name).trim().split('\n').pop();
const tokens = { viewer: token('viewer', 'val'), alice: token('editor', 'alice'), bob: token('editor', 'bob'), admin: token('admin', 'root') };

// ---- the server ----
let server = null;
let port = 0;
async function startServer() {
  const err = join(box, `serve-${Date.now()}.err`);
  writeFileSync(err, '');
  const { openSync } = await import('node:fs');
  const fd = openSync(err, 'a');
  server = spawn(bin, ['serve', '--repo', 'file://' + join(box, 'origin.git'), '--listen', `127.0.0.1:${port}`,
    '--poll', '200ms', '--dir', repo, '--state', statePath], { stdio: ['ignore', 'ignore', fd] });
  const exited = new Promise((resolve) => server.once('exit', resolve));
  const address = await until(() => {
    const m = /"address":"127\.0\.0\.1:(\d+)"/.exec(readFileSync(err, 'utf8'));
    return m ? Number(m[1]) : null;
  }, 'the server to listen (' + err + ')', exited);
  port = address;
  await until(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200 || null, 'GET /readyz to answer 200');
}
async function stopServer() {
  const gone = new Promise((resolve) => server.once('exit', resolve));
  server.kill('SIGTERM');
  await gone;
}
// Polls `f` until it gives a value (the server's answers are waited for, not timed).
async function until(f, what, abort) {
  const deadline = Date.now() + kPatience;
  let aborted = false;
  abort?.then(() => { aborted = true; });
  while (Date.now() < deadline && !aborted) {
    try {
      const v = await f();
      if (v) return v;
    } catch { /* not yet */ }
    await new Promise((r) => setImmediate(r));
  }
  throw new Error('gave up waiting for ' + what);
}
const api = async (method, path, tok, body) => {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, {
    method, headers: { Authorization: 'Bearer ' + tok, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
};

// The id of the newest watch.started of `env` past `after`: the server's watch of its files runs
// from then on (a hand edit before it would be found by its first scan, not by a watcher).
const watchStarted = (env, after = 0) => until(async () => {
  const r = await api('GET', `/api/v1/events?type=watch.started&environment=${env}&after=${after}&limit=500`, tokens.admin);
  const ids = (r.body?.events ?? []).map((e) => e.id);
  return ids.length ? Math.max(...ids) : null;
}, `the watch of ${env} to start`);
let stagingWatch = 0;

// ---- the steps ----
let passed = 0, failed = 0;
async function step(name, f) {
  try {
    await f();
    passed++;
    console.log('ok - ' + name);
  } catch (e) {
    failed++;
    console.log('not ok - ' + name + '\n  ' + String(e?.stack ?? e).split('\n').join('\n  '));
  }
}

const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] });
const expect = async (locator, what) => {
  await locator.first().waitFor({ state: 'visible', timeout: kPatience }).catch(() => {
    throw new Error('not shown: ' + what);
  });
};
async function signedIn(who, width = 1280) {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.getByLabel('API token').fill(tokens[who]);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Environments' }), 'the environments page of ' + who);
  return { context, page, requests };
}

try {
  await startServer();

  await step('sign in; the token is in no storage; nothing loads from another origin', async () => {
    const { context, page, requests } = await signedIn('admin');
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
    if (stored.includes(tokens.admin) || stored.includes('csrf')) throw new Error('a secret in web storage: ' + stored);
    const cookies = await context.cookies();
    const c = cookies.find((x) => x.name === 'driftless_session');
    if (!c || !c.httpOnly || c.sameSite !== 'Strict') throw new Error('session cookie: ' + JSON.stringify(cookies));
    const foreign = requests.filter((u) => !u.startsWith(`http://127.0.0.1:${port}/`));
    if (foreign.length) throw new Error('requests to another origin: ' + foreign.join(', '));
    await context.close();
  });

  await step('see the environments, with search', async () => {
    const { context, page } = await signedIn('admin');
    await expect(page.locator('tr[data-env="production"]'), 'the production row');
    await expect(page.locator('tr[data-env="staging"]'), 'the staging row');
    await expect(page.locator('tr[data-env="production"] .badge'), 'production marked protected');
    await page.getByLabel('Search').fill('stag');
    await page.locator('tr[data-env="production"]').waitFor({ state: 'detached', timeout: kPatience });
    await page.getByLabel('Search').fill('');
    await expect(page.locator('tr[data-env="staging"] .s-applied'), 'staging applied by sync: auto');
    await page.screenshot({ path: join(shots, 'environments.png') });
    await context.close();
  });

  await step('a hand edit of a managed file shows on the open page without a reload', async () => {
    const { context, page } = await signedIn('alice');
    await page.goto(`http://127.0.0.1:${port}/environments/staging`);
    await expect(page.locator('li[data-address="file.file/app"] .s-in_sync'), 'app in sync');
    stagingWatch = await watchStarted('staging');
    writeFileSync(join(root, 'staging', 'app.conf'), 'edited by hand\n');
    await expect(page.locator('li[data-address="file.file/app"] .s-drifted'), 'app drifted on the open page');
    await page.screenshot({ path: join(shots, 'environment.png'), fullPage: true });
    // ... and the resource's diff.
    await page.getByRole('link', { name: 'file.file/app' }).click();
    await expect(page.locator('pre.diff .add, pre.diff .del'), 'the diff lines');
    const diff = await page.getByLabel('resource diff').innerText();
    if (!diff.includes('edited by hand')) throw new Error('the diff does not show the edit: ' + diff);
    await page.screenshot({ path: join(shots, 'resource.png'), fullPage: true });
    await context.close();
  });

  await step('an editor plans a protected environment, an admin applies, a second editor approves, it applies', async () => {
    const e = await signedIn('alice');
    await e.page.goto(`http://127.0.0.1:${port}/environments/production`);
    await e.page.getByRole('button', { name: 'Plan' }).click();
    await expect(e.page.locator('h1 .s-planned'), 'the plan run planned');
    await expect(e.page.locator('.change .a-create'), 'the planned create');
    if (await e.page.getByRole('button', { name: 'Apply' }).count()) throw new Error('an editor may apply production');
    const a = await signedIn('admin');
    await a.page.goto(`http://127.0.0.1:${port}/environments/production`);
    await a.page.getByRole('button', { name: 'Apply' }).click();
    await expect(a.page.locator('h1 .s-awaiting_approval'), 'the run awaiting approval');
    await e.context.close();
    const url = a.page.url();
    await a.page.screenshot({ path: join(shots, 'run-awaiting-approval.png'), fullPage: true });
    const b = await signedIn('bob');
    await b.page.goto(url);
    await b.page.getByLabel('Comment').fill('looks right');
    await b.page.getByRole('button', { name: 'Approve' }).click();
    // Both open pages follow the run through the stream.
    await expect(b.page.locator('h1 .s-applied'), 'the run applied (bob)');
    await expect(a.page.locator('h1 .s-applied'), 'the run applied (alice)');
    if (!existsSync(join(root, 'production', 'app.conf'))) throw new Error('production/app.conf not written');
    await b.page.screenshot({ path: join(shots, 'run.png'), fullPage: true });
    await a.context.close();
    await b.context.close();
  });

  await step('a viewer sees no action button; a forged request (no CSRF header) is refused', async () => {
    const v = await signedIn('viewer', 420);
    await v.page.goto(`http://127.0.0.1:${port}/environments/production`);
    await expect(v.page.locator('li[data-address="file.file/app"]'), 'the resources');
    const buttons = await v.page.locator('main button').count();
    if (buttons !== 0) throw new Error(`a viewer sees ${buttons} buttons`);
    await v.page.screenshot({ path: join(shots, 'viewer-narrow.png'), fullPage: true });
    await v.context.close();
    const a = await signedIn('alice');
    const forged = await a.page.evaluate(async () => {
      const r = await fetch('/api/v1/environments/staging/runs', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"action":"plan"}' });
      return { status: r.status, body: await r.text() };
    });
    if (forged.status !== 403 || !forged.body.includes('"csrf"')) throw new Error('forged: ' + JSON.stringify(forged));
    await a.context.close();
  });

  await step('admins see the audit log; the stream resumes after the server restarts', async () => {
    const { context, page } = await signedIn('admin');
    await page.getByRole('link', { name: 'Audit' }).click();
    await expect(page.getByRole('cell', { name: 'session.create' }), 'session.create in the audit log');
    await page.screenshot({ path: join(shots, 'audit.png') });
    await page.goto(`http://127.0.0.1:${port}/environments/staging`);
    await page.waitForFunction(() => document.documentElement.dataset.live === 'live', null, { timeout: kPatience });
    const before = await page.evaluate(() => window.__driftlessLive.opened);
    if (before !== 1) throw new Error(`${before} streams opened by one tab`);
    await stopServer();
    await page.waitForFunction(() => document.documentElement.dataset.live !== 'live', null, { timeout: kPatience });
    await startServer();
    await page.waitForFunction(() => document.documentElement.dataset.live === 'live', null, { timeout: kPatience });
    // A change made after the restart reaches the page through the resumed stream.
    await watchStarted('staging', stagingWatch);
    writeFileSync(join(root, 'staging', 'app.conf'), 'one');
    await expect(page.locator('li[data-address="file.file/app"] .s-in_sync'), 'the drift resolved, seen live');
    writeFileSync(join(root, 'staging', 'app.conf'), 'edited again\n');
    await expect(page.locator('li[data-address="file.file/app"] .s-drifted'), 'the new drift, seen live');
    await context.close();
  });

  await step('signed out when the session ends: a clear state, no reconnect flood', async () => {
    const { context, page } = await signedIn('alice');
    await page.waitForFunction(() => document.documentElement.dataset.live === 'live', null, { timeout: kPatience });
    // Another tab of the same browser signs out: this one's cookie is gone too.
    const other = await context.newPage();
    await other.goto(`http://127.0.0.1:${port}/`);
    await other.getByRole('button', { name: 'Sign out' }).click();
    await expect(other.getByLabel('API token'), 'the sign-in form');
    await stopServer();
    await startServer();
    await expect(page.locator('#signed-out'), 'the signed-out notice');
    const opened = await page.evaluate(() => window.__driftlessLive.opened);
    if (opened > 3) throw new Error(`${opened} streams opened after the sign-out`);
    await context.close();
  });
} finally {
  await browser.close();
  if (server && server.exitCode === null) await stopServer();
  if (!failed) rmSync(box, { recursive: true, force: true });
  else console.log('kept ' + box);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
