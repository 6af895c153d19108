// The one client of the server's API: the session (an HttpOnly cookie made by the server; the
// token is sent once and never kept), the CSRF value in memory only, and errors as values.

export interface Session {
  name: string;
  role: string;
  scope: string;
  rights: string[];
  csrf: string;
  expires_at: number | null;
}

export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string) {
    super(message);
  }
}

let session: Session | null = null;
const signedOutListeners = new Set<() => void>();

export function current(): Session | null {
  return session;
}

export function can(right: string): boolean {
  return session !== null && session.rights.includes(right);
}

/// Whether the session may use `right` on an environment: on a protected one, apply and destroy
/// need an admin (docs/tokens.md); the server decides anyway.
export function canOn(right: string, protectedEnv: boolean): boolean {
  if (!can(right)) return false;
  return !(protectedEnv && (right === 'apply' || right === 'destroy') && session!.role !== 'admin');
}

export function onSignedOut(f: () => void): () => void {
  signedOutListeners.add(f);
  return () => signedOutListeners.delete(f);
}

function signedOut() {
  session = null;
  signedOutListeners.forEach((f) => f());
}

function toSession(body: any): Session {
  const rights = Array.isArray(body.rights)
    ? body.rights
    : String(body.rights ?? '').split(',').filter((r: string) => r !== '');
  return {
    name: String(body.name ?? ''),
    role: String(body.role ?? ''),
    scope: String(body.scope ?? ''),
    rights,
    csrf: String(body.csrf ?? ''),
    expires_at: body.expires_at ?? null,
  };
}

export async function request<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && session) headers['X-CSRF-Token'] = session.csrf;
  const r = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const text = await r.text();
  let parsed: any = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!r.ok) {
    const e = parsed?.error;
    if (r.status === 401 && path !== '/api/v1/session') signedOut();
    throw new ApiError(r.status, e?.code ?? 'http_' + r.status, e?.message ?? `${method} ${path}: ${r.status}`);
  }
  return parsed as T;
}

/// Every item of a paginated list (`{items, next_cursor}`).
export async function all<T = any>(path: string): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  const sep = path.includes('?') ? '&' : '?';
  for (let pages = 0; pages < 100; pages++) {
    const page: any = await request('GET', path + sep + 'limit=500' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
    items.push(...(page.items ?? []));
    cursor = page.next_cursor ?? null;
    if (!cursor) break;
  }
  return items;
}

export async function resume(): Promise<Session | null> {
  try {
    session = toSession(await request('GET', '/api/v1/session'));
  } catch {
    session = null;
  }
  return session;
}

export async function signIn(token: string): Promise<Session> {
  session = toSession(await request('POST', '/api/v1/session', { token }));
  return session;
}

export async function signOut(): Promise<void> {
  try {
    await request('DELETE', '/api/v1/session');
  } finally {
    signedOut();
  }
}
