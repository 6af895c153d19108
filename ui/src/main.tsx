import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, all, can, canOn, current, onSignedOut, request, resume, signIn, signOut } from './api';
import { live, LiveEvent, LiveState } from './live';
import './style.css';

// ---- routing: the History API; the server answers index.html for every client route ----
function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const f = () => setPath(location.pathname);
    addEventListener('popstate', f);
    return () => removeEventListener('popstate', f);
  }, []);
  return path;
}
export function go(path: string) {
  history.pushState(null, '', path);
  dispatchEvent(new PopStateEvent('popstate'));
}
function Link(props: { href: string; children: any; class?: string }) {
  return (
    <a
      href={props.href}
      class={props.class}
      onClick={(e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        go(props.href);
      }}
    >
      {props.children}
    </a>
  );
}
const enc = encodeURIComponent;

// ---- data: load, and load again when an event about it arrives ----
function useLoad<T>(load: () => Promise<T>, deps: any[], relevant?: (e: LiveEvent) => boolean) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string>('');
  useEffect(() => {
    let alive = true;
    let running = false;
    let again = false;
    const run = async () => {
      if (running) {
        again = true;
        return;
      }
      running = true;
      do {
        again = false;
        try {
          const d = await load();
          if (alive) {
            setData(d);
            setError('');
          }
        } catch (e: any) {
          if (alive) setError(e?.message ?? String(e));
        }
      } while (again && alive);
      running = false;
    };
    run();
    const off = relevant ? live.subscribe((e) => relevant(e) && run()) : () => {};
    return () => {
      alive = false;
      off();
    };
  }, deps);
  return { data, error };
}

const short = (c: string | null | undefined) => (c ? c.slice(0, 7) : '—');
const when = (t: number | null | undefined) =>
  t ? new Date(t * 1000).toISOString().replace('T', ' ').slice(0, 19) + 'Z' : '—';
const span = (a: number, b: number | null) => {
  const s = Math.max(0, (b ?? Date.now() / 1000) - a);
  return s < 60 ? `${Math.round(s)}s` : s < 3600 ? `${Math.round(s / 60)}m` : `${(s / 3600).toFixed(1)}h`;
};

function Status(props: { s: string }) {
  return <span class={'status s-' + props.s.replace(/[^a-z_]/g, '')}>{props.s.replace(/_/g, ' ')}</span>;
}

function Diff(props: { text: string; label?: string }) {
  const lines = (props.text ?? '').split('\n');
  return (
    <pre class="diff" aria-label={props.label ?? 'diff'} tabIndex={0}>
      {lines.map((l) => (
        <span class={l.startsWith('+') ? 'add' : l.startsWith('-') ? 'del' : l.startsWith('@@') ? 'hunk' : ''}>
          {l + '\n'}
        </span>
      ))}
    </pre>
  );
}

function Failure(props: { error: string }) {
  return props.error ? <p role="alert" class="error">{props.error}</p> : null;
}

// ---- sign-in ----
function SignIn(props: { onIn: () => void; signedOut: boolean }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  return (
    <main class="signin">
      <h1>driftless</h1>
      {props.signedOut && <p role="status" class="notice" id="signed-out">You are signed out. Sign in again to go on.</p>}
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError('');
          try {
            await signIn(token.trim());
            setToken('');
            props.onIn();
          } catch (err: any) {
            setError(err instanceof ApiError && err.status === 401 ? 'This token was refused.' : err.message);
          } finally {
            setBusy(false);
          }
        }}
      >
        <label for="token">API token</label>
        <input id="token" type="password" autocomplete="off" value={token} required
          onInput={(e) => setToken((e.target as HTMLInputElement).value)} />
        <button type="submit" disabled={busy}>Sign in</button>
        <Failure error={error} />
      </form>
    </main>
  );
}

// ---- environments ----
export function EnvTable(props: { envs: any[] }) {
  const [q, setQ] = useState('');
  const [only, setOnly] = useState('all');
  const rows = useMemo(() => {
    const needle = q.toLowerCase();
    return props.envs.filter((e) => {
      if (needle && !e.name.toLowerCase().includes(needle) && !String(e.branch ?? '').toLowerCase().includes(needle)) return false;
      if (only === 'drifted') return (e.open_drift ?? 0) > 0;
      if (only === 'behind') return (e.commits_behind ?? 0) > 0;
      if (only === 'failed') return ['errored', 'canceled', 'interrupted'].includes(e.last_run?.status);
      if (only === 'protected') return e.protected;
      return true;
    });
  }, [props.envs, q, only]);
  return (
    <section>
      <div class="filters">
        <label>Search <input type="search" value={q} onInput={(e) => setQ((e.target as HTMLInputElement).value)} /></label>
        <label>Show{' '}
          <select value={only} onChange={(e) => setOnly((e.target as HTMLSelectElement).value)}>
            <option value="all">all</option><option value="drifted">drifted</option>
            <option value="behind">behind</option><option value="failed">failed</option>
            <option value="protected">protected</option>
          </select>
        </label>
        <span class="count" aria-live="polite">{rows.length} of {props.envs.length}</span>
      </div>
      <div class="scroll">
        <table class="envs">
          <thead><tr><th>Environment</th><th>Branch</th><th>Applied</th><th>Head</th><th>Sync</th><th>Last run</th><th>Drift</th></tr></thead>
          <tbody>
            {rows.map((e) => (
              <tr key={e.name} data-env={e.name}>
                <td><Link href={'/environments/' + enc(e.name)}>{e.name}</Link>{e.protected && <span class="badge" title="protected">protected</span>}</td>
                <td>{e.branch ?? '—'}</td>
                <td><code>{short(e.applied_commit)}</code></td>
                <td><code>{short(e.branch_head)}</code>{(e.commits_behind ?? 0) > 0 && <span class="behind"> behind by {e.commits_behind}</span>}</td>
                <td>{e.sync ?? '—'}</td>
                <td>{e.last_run ? <><Link href={'/runs/' + e.last_run.id}>#{e.last_run.id} {e.last_run.action}</Link> <Status s={e.last_run.status} /></> : '—'}</td>
                <td>{(e.open_drift ?? 0) > 0 ? <span class="drift-count">{e.open_drift} open</span> : <span class="ok">in sync</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function Environments() {
  const { data, error } = useLoad(() => all('/api/v1/environments'), [], () => true);
  return (
    <>
      <h1>Environments</h1>
      <Failure error={error} />
      {data ? <EnvTable envs={data} /> : <p>Loading…</p>}
    </>
  );
}

function Actions(props: { env: string; protected: boolean }) {
  const [msg, setMsg] = useState('');
  const [confirm, setConfirm] = useState('');
  const [asking, setAsking] = useState(false);
  const queue = async (action: string) => {
    try {
      const run: any = await request('POST', `/api/v1/environments/${enc(props.env)}/runs`, { action });
      go('/runs/' + run.id);
    } catch (e: any) {
      setMsg(e.message);
    }
  };
  const apply = canOn('apply', props.protected), destroy = canOn('destroy', props.protected);
  if (!can('plan') && !apply && !destroy) return null;
  return (
    <div class="actions">
      {can('plan') && <button onClick={() => queue('plan')}>Plan</button>}
      {apply && <button onClick={() => queue('apply')}>Apply</button>}
      {destroy && !asking && <button class="danger" onClick={() => setAsking(true)}>Destroy…</button>}
      {asking && (
        <form class="confirm" onSubmit={(e) => { e.preventDefault(); if (confirm === props.env) queue('destroy'); }}>
          <label for="confirm-destroy">Type <strong>{props.env}</strong> to destroy it</label>
          <input id="confirm-destroy" value={confirm} onInput={(e) => setConfirm((e.target as HTMLInputElement).value)} />
          <button class="danger" type="submit" disabled={confirm !== props.env}>Destroy {props.env}</button>
          <button type="button" onClick={() => { setAsking(false); setConfirm(''); }}>Keep it</button>
        </form>
      )}
      <Failure error={msg} />
    </div>
  );
}

function resourceStatus(r: any): string {
  if (r.drift) return 'drifted';
  if (r.last_change?.status && r.last_change.status !== 'done') return 'failed';
  return r.status ?? 'in_sync';
}

function Environment(props: { env: string }) {
  const base = '/api/v1/environments/' + enc(props.env);
  const mine = (e: LiveEvent) => e.environment === props.env;
  const env = useLoad(() => request('GET', base), [props.env], mine);
  const resources = useLoad(() => all(base + '/resources'), [props.env], mine);
  const runs = useLoad(() => request('GET', base + '/runs?limit=20'), [props.env], mine);
  const timeline = useLoad(() => request('GET', base + '/drift/timeline?limit=50'), [props.env], mine);
  const hist = useLoad(() => request('GET', base + '/history?limit=20'), [props.env], mine);
  const groups = useMemo(() => {
    const g = new Map<string, any[]>();
    for (const r of resources.data ?? []) {
      const k = r.kind + ' on ' + (r.target ?? '—');
      g.set(k, [...(g.get(k) ?? []), r]);
    }
    return [...g.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  }, [resources.data]);
  const e: any = env.data;
  return (
    <>
      <nav class="crumbs"><Link href="/">Environments</Link> / {props.env}</nav>
      <h1>{props.env} {e?.protected && <span class="badge">protected</span>}</h1>
      <Failure error={env.error} />
      {e && (
        <dl class="facts">
          <dt>Branch</dt><dd>{e.branch ?? '—'}</dd>
          <dt>Applied</dt><dd><code>{short(e.applied_commit)}</code></dd>
          <dt>Head</dt><dd><code>{short(e.branch_head)}</code>{e.commits_behind > 0 && ` (behind by ${e.commits_behind})`}</dd>
          <dt>Sync</dt><dd>{e.sync}</dd>
          <dt>Drift</dt><dd><Status s={e.drift_status ?? 'unknown'} /> {e.open_drift ?? 0} open</dd>
        </dl>
      )}
      {e && <Actions env={props.env} protected={!!e.protected} />}
      <h2>Resources</h2>
      <Failure error={resources.error} />
      {groups.map(([k, rs]) => (
        <section class="group">
          <h3>{k}</h3>
          <ul class="resources">
            {rs.map((r) => (
              <li data-address={r.address}>
                <Link href={`/environments/${enc(props.env)}/resources/${enc(r.kind)}/${enc(r.name)}`}>{r.address}</Link>{' '}
                <Status s={resourceStatus(r)} />
              </li>
            ))}
          </ul>
        </section>
      ))}
      <h2>Runs</h2>
      <div class="scroll"><RunList runs={(runs.data as any)?.items ?? []} /></div>
      <h2>Drift timeline</h2>
      <ol class="timeline" aria-label="drift timeline">
        {((timeline.data as any)?.items ?? []).map((d: any) => (
          <li>
            <Status s={d.status} /> <strong>{d.address}</strong> since {when(d.onset)} for {span(d.onset, d.resolved_at)}
            {d.actor && <> by {d.actor}</>}{d.resolution && <> — {d.resolution}</>}
          </li>
        ))}
      </ol>
      <h2>History</h2>
      <ol class="timeline" aria-label="history">
        {((hist.data as any)?.items ?? []).map((h: any) => (
          <li><Status s={h.status} /> {h.kind} of <code>{short(h.commit)}</code> “{h.commit_subject}” by {h.user} at {when(h.started_at)}: {h.summary}</li>
        ))}
      </ol>
    </>
  );
}

function RunList(props: { runs: any[] }) {
  return (
    <table class="runs">
      <thead><tr><th>Run</th><th>Action</th><th>Status</th><th>Author</th><th>Commit</th><th>Created</th></tr></thead>
      <tbody>
        {props.runs.map((r) => (
          <tr data-run={r.id}>
            <td><Link href={'/runs/' + r.id}>#{r.id}</Link></td><td>{r.action}</td><td><Status s={r.status} /></td>
            <td>{r.author}</td><td><code>{short(r.commit)}</code></td><td>{when(r.created_at)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Value(props: { v: any; label: string }) {
  const text = props.v === undefined || props.v === null ? '—' : typeof props.v === 'string' ? props.v : JSON.stringify(props.v, null, 2);
  return <pre class="value" aria-label={props.label} tabIndex={0}>{text}</pre>;
}

function Resource(props: { env: string; kind: string; name: string }) {
  const path = `/api/v1/environments/${enc(props.env)}/resources/${enc(props.kind)}/${enc(props.name)}`;
  // ?live=true: declared (at the applied commit), applied and live, and the diffs; the stored
  // row alone when the live read fails now (409 check_failed).
  const r = useLoad(
    () => request('GET', path + '?live=true').catch((e) => (e instanceof ApiError && e.status === 409 ? request('GET', path) : Promise.reject(e))),
    [path], (e) => e.environment === props.env);
  const d: any = r.data;
  const applied = d?.applied ?? d?.attributes?.attrs;
  const driftDiff = d?.drift_diff || d?.drift?.diff || '';
  const planDiff = d?.diff ?? '';
  const drifted = d?.drifted ?? !!d?.drift;
  return (
    <>
      <nav class="crumbs"><Link href="/">Environments</Link> / <Link href={'/environments/' + enc(props.env)}>{props.env}</Link> / {props.kind}/{props.name}</nav>
      <h1>{props.kind}/{props.name} {d && <Status s={drifted ? 'drifted' : d.action && d.action !== 'no-op' ? 'changed' : 'in_sync'} />}</h1>
      <Failure error={r.error} />
      {d && (
        <>
          <div class="sides">
            <section><h2>Declared</h2><Value v={d.declared} label="declared" /></section>
            <section><h2>Applied</h2><Value v={applied} label="applied" /></section>
            <section><h2>Live</h2><Value v={d.live} label="live" /></section>
          </div>
          <h2>Diff</h2>
          {driftDiff ? <><h3>Applied → live (drift)</h3><Diff text={driftDiff} label="resource diff" /></> : <p class="ok">Live matches what was applied.</p>}
          {planDiff && d.action && d.action !== 'no-op' && <><h3>Live → declared ({d.action}: {d.reason})</h3><Diff text={planDiff} label="plan diff" /></>}
          {d.drift && <p>Drifted since {when(d.drift.onset)}{d.drift.actor && ` by ${d.drift.actor}`}.</p>}
        </>
      )}
    </>
  );
}

function Run(props: { id: string }) {
  const mine = (e: LiveEvent) => String(e.data?.run_id ?? e.data?.event?.run_id ?? '') === props.id || e.type.startsWith('apply.');
  const r = useLoad(() => request('GET', '/api/v1/runs/' + enc(props.id)), [props.id], mine);
  const [log, setLog] = useState<LiveEvent[]>([]);
  const [comment, setComment] = useState('');
  const [msg, setMsg] = useState('');
  useEffect(() => live.subscribe((e) => mine(e) && setLog((l) => [...l, e])), [props.id]);
  const d: any = r.data;
  const decide = async (verb: string) => {
    try {
      await request('POST', `/api/v1/runs/${enc(props.id)}/${verb}`, comment ? { comment } : {});
      setComment('');
      setMsg('');
    } catch (e: any) {
      setMsg(e.message);
    }
  };
  const open = d && !['applied', 'no_changes', 'canceled', 'errored', 'interrupted', 'discarded', 'superseded'].includes(d.status);
  return (
    <>
      <nav class="crumbs"><Link href="/">Environments</Link> / {d && <Link href={'/environments/' + enc(d.environment)}>{d.environment}</Link>} / run #{props.id}</nav>
      <h1>Run #{props.id} {d && <>{d.action} <Status s={d.status} /></>}</h1>
      <Failure error={r.error} />
      {d && (
        <>
          <dl class="facts">
            <dt>Author</dt><dd>{d.author}</dd><dt>Commit</dt><dd><code>{short(d.commit)}</code></dd>
            <dt>Created</dt><dd>{when(d.created_at)}</dd><dt>Message</dt><dd>{d.message || '—'}</dd>
          </dl>
          {open && (
            <div class="actions">
              {d.status === 'awaiting_approval' && can('approve') && (
                <>
                  <label for="comment">Comment</label>
                  <input id="comment" value={comment} onInput={(e) => setComment((e.target as HTMLInputElement).value)} />
                  <button onClick={() => decide('approve')}>Approve</button>
                  <button class="danger" onClick={() => decide('reject')}>Reject</button>
                </>
              )}
              {(can('apply') || can('plan')) && <button onClick={() => decide('cancel')}>Cancel run</button>}
            </div>
          )}
          <Failure error={msg} />
          <h2>Approvals</h2>
          <ul>{(d.approvals ?? []).map((a: any) => <li>{a.decision ?? 'approved'} by {a.approver ?? a.who ?? a.name} {a.comment && `— “${a.comment}”`}</li>)}</ul>
          <h2>Plan</h2>
          {(d.plan?.changes ?? []).map((c: any) => (
            <section class="change">
              <h3><span class={'act a-' + c.action}>{c.action}</span> {c.address} <small>{c.reason}</small></h3>
              {c.diff && <Diff text={c.diff} label={'diff of ' + c.address} />}
            </section>
          ))}
          {(d.plan?.steps ?? []).length > 0 && (
            <>
              <h2>Steps</h2>
              <ol>{d.plan.steps.map((s: any) => <li>{typeof s === 'string' ? s : JSON.stringify(s)}</li>)}</ol>
            </>
          )}
          <h2>Log</h2>
          <ol class="log" aria-label="run log" aria-live="polite">{log.map((e) => <li><code>{e.type}</code> {e.data?.event?.status ?? e.data?.event?.summary ?? ''}</li>)}</ol>
        </>
      )}
    </>
  );
}

function Audit() {
  const { data, error } = useLoad(() => request('GET', '/api/v1/audit?limit=200'), []);
  return (
    <>
      <h1>Audit log</h1>
      <Failure error={error} />
      <div class="scroll">
        <table>
          <thead><tr><th>Time</th><th>Who</th><th>Action</th><th>Environment</th><th>Result</th><th>Reason</th></tr></thead>
          <tbody>{((data as any)?.items ?? []).map((a: any) => (
            <tr><td>{when(a.time)}</td><td>{a.who}</td><td>{a.action}</td><td>{a.environment}</td><td>{a.result}</td><td>{a.reason}</td></tr>
          ))}</tbody>
        </table>
      </div>
    </>
  );
}

function Tokens() {
  const [n, setN] = useState(0);
  const { data, error } = useLoad(() => all('/api/v1/tokens'), [n]);
  const [name, setName] = useState('');
  const [role, setRole] = useState('viewer');
  const [made, setMade] = useState('');
  const [msg, setMsg] = useState('');
  return (
    <>
      <h1>Tokens</h1>
      <Failure error={error || msg} />
      <form class="actions" onSubmit={async (e) => {
        e.preventDefault();
        try {
          const t: any = await request('POST', '/api/v1/tokens', { name, role });
          setMade(t.token ?? '');
          setName('');
          setN(n + 1);
        } catch (err: any) { setMsg(err.message); }
      }}>
        <label for="tname">Name</label><input id="tname" value={name} required onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        <label for="trole">Role</label>
        <select id="trole" value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value)}>
          <option>viewer</option><option>editor</option><option>admin</option>
        </select>
        <button type="submit">Create token</button>
      </form>
      {made && <p role="status">New token (shown once): <code>{made}</code></p>}
      <table>
        <thead><tr><th>Name</th><th>Role</th><th>Environments</th><th>Status</th><th></th></tr></thead>
        <tbody>{(data ?? []).map((t: any) => (
          <tr><td>{t.name}</td><td>{t.role}</td><td>{t.envs}</td><td>{t.status}</td>
            <td>{t.status === 'active' && <button onClick={async () => { try { await request('DELETE', '/api/v1/tokens/' + enc(t.name)); setN(n + 1); } catch (err: any) { setMsg(err.message); } }}>Revoke {t.name}</button>}</td></tr>
        ))}</tbody>
      </table>
    </>
  );
}

function Page(props: { path: string }) {
  const p = props.path.split('/').filter((s) => s !== '').map(decodeURIComponent);
  if (p[0] === 'environments' && p.length === 2) return <Environment env={p[1]} />;
  if (p[0] === 'environments' && p[2] === 'resources' && p.length === 5) return <Resource env={p[1]} kind={p[3]} name={p[4]} />;
  if (p[0] === 'runs' && p.length === 2) return <Run id={p[1]} />;
  if (p[0] === 'audit') return <Audit />;
  if (p[0] === 'tokens') return <Tokens />;
  return <Environments />;
}

function App() {
  const path = usePath();
  const [state, setState] = useState<'loading' | 'in' | 'out' | 'signed-out'>('loading');
  const [liveState, setLiveState] = useState<LiveState>(live.state);
  useEffect(() => {
    resume().then((s) => setState(s ? 'in' : 'out'));
    const a = onSignedOut(() => { live.stop('signed-out'); setState('signed-out'); });
    const b = live.onState((s) => { setLiveState(s); if (s === 'signed-out') setState('signed-out'); });
    return () => { a(); b(); };
  }, []);
  useEffect(() => { if (state === 'in') live.start(); }, [state]);
  if (state === 'loading') return <p>Loading…</p>;
  if (state !== 'in') return <SignIn signedOut={state === 'signed-out'} onIn={() => { live.stop(); setState('in'); }} />;
  const s = current()!;
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header>
        <Link href="/" class="brand">driftless</Link>
        <nav aria-label="main">
          <Link href="/">Environments</Link>
          {can('tokens') && <><Link href="/audit">Audit</Link><Link href="/tokens">Tokens</Link></>}
        </nav>
        <span class={'live l-' + liveState} role="status" id="live-state">{liveState.replace('-', ' ')}</span>
        <span class="who">{s.name} ({s.role})</span>
        <button onClick={() => signOut()}>Sign out</button>
      </header>
      <main id="main"><Page path={path} /></main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
