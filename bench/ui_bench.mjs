// The web UI's size and speed: the JavaScript and CSS it ships (raw and gzip, as the server
// sends them) and the time Chromium takes to show 1,000 environments.
//
//   node bench/ui_bench.mjs DRIFTLESS_BINARY [RUNS]      (from the repository's top folder)
//
// The page and its bundle come from a real `driftless serve`; the API answers of the list
// (1,000 generated environments) and of the session are given by the browser's request
// interception, so that the time is the UI's: from the start of the navigation to the moment
// the table holds its 1,000th row (a MutationObserver in the page), median of RUNS (default 5).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(join(process.cwd(), 'ui', 'package.json'));
const { chromium } = require('playwright-core');
const [bin, runsArg] = process.argv.slice(2);
const runs = Number(runsArg ?? 5);
const N = 1000;

const box = mkdtempSync(join(tmpdir(), 'driftless-ui-bench-'));
const repo = join(box, 'repo');
mkdirSync(repo);
writeFileSync(join(repo, 'driftless.yaml'), `project: bench\nenvironments:\n  - branch: main\n    name: production\ntargets:\n  host: {provider: file, root: "${box}/root"}\n`);
const git = (...a) => execFileSync('git', ['-c', 'user.name=b', '-c', 'user.email=b@example.com', ...a], { cwd: repo });
git('init', '-q', '-b', 'main');
git('add', '-A');
git('commit', '-q', '-m', 'bench');
const err = join(box, 'serve.err');
const server = spawn(bin, ['serve', '--repo', repo, '--listen', '127.0.0.1:0', '--dir', repo, '--state', join(box, 'state.db')],
  { stdio: ['ignore', 'ignore', openSync(err, 'w')] });
let port = 0;
for (let i = 0; i < 1e7 && !port; i++) {
  const m = /"address":"127\.0\.0\.1:(\d+)"/.exec(readFileSync(err, 'utf8'));
  if (m) port = Number(m[1]);
  else await new Promise((r) => setImmediate(r));
}
const base = `http://127.0.0.1:${port}`;

// What is shipped: index.html's script and stylesheet, raw and as the server gzips them.
const index = await (await fetch(base + '/')).text();
const assets = [...index.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
let raw = 0, gz = 0;
for (const a of assets) {
  raw += (await (await fetch(base + a, { headers: { 'Accept-Encoding': 'identity' } })).arrayBuffer()).byteLength;
  const r = await fetch(base + a, { headers: { 'Accept-Encoding': 'gzip' } });
  gz += Number(r.headers.get('content-length'));
}

const envs = Array.from({ length: N }, (_, i) => ({
  name: `env-${String(i).padStart(4, '0')}`, branch: `env/${i}`, applied_commit: 'a'.repeat(40),
  branch_head: i % 7 ? 'a'.repeat(40) : 'b'.repeat(40), commits_behind: i % 7 ? 0 : 3, sync: i % 2 ? 'auto' : 'manual',
  protected: i % 10 === 0, open_drift: i % 13 ? 0 : 2, drift_status: i % 13 ? 'clean' : 'drifted',
  last_run: { id: i + 1, action: 'apply', status: i % 17 ? 'applied' : 'errored' },
}));
const session = { name: 'bench', role: 'viewer', scope: '**', rights: ['read'], csrf: 'x', expires_at: null };
const browser = await chromium.launch({ executablePath: process.env.DRIFTLESS_CHROMIUM ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
const times = [];
for (let run = 0; run < runs; run++) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.route('**/api/v1/session', (r) => r.fulfill({ json: session }));
  await page.route('**/api/v1/environments?*', (r) => r.fulfill({ json: { items: envs, next_cursor: null } }));
  await page.route('**/api/v1/events*', (r) => r.fulfill({ status: 200, contentType: 'text/event-stream', body: ': hi\n\n' }));
  await page.addInitScript((n) => {
    new MutationObserver((_, o) => {
      if (document.querySelectorAll('tr[data-env]').length >= n) {
        window.__shown = performance.now();
        o.disconnect();
      }
    }).observe(document, { childList: true, subtree: true });
  }, N);
  await page.goto(base + '/');
  await page.waitForFunction(() => window.__shown !== undefined, null, { timeout: 60000 });
  times.push(await page.evaluate(() => window.__shown));
  await context.close();
}
await browser.close();
server.kill('SIGTERM');
rmSync(box, { recursive: true, force: true });
const sorted = [...times].sort((a, b) => a - b);
const median = sorted[Math.floor(sorted.length / 2)];
const kb = (b) => (b / 1024).toFixed(1) + ' KiB';
console.log(`assets: ${assets.join(' ')}`);
console.log(`shipped JavaScript and CSS: ${kb(raw)} raw, ${kb(gz)} gzip`);
console.log(`time to show ${N} environments: median ${median.toFixed(0)} ms of ${runs} runs (${sorted.map((t) => t.toFixed(0)).join(', ')} ms)`);
console.log(`machine: ${cpus().length} cores (${cpus()[0].model}), load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
