// The tab's one event stream (GET /api/v1/events as server-sent events), shared by every view.
// EventSource reconnects on its own with Last-Event-ID; when the server closes it for good (an
// HTTP error), the stream is made again after an exponential backoff with jitter, resuming with
// ?last_event_id=; a refused session (401) ends it with a "signed out" state, no reconnect.

import { request } from './api';

export interface LiveEvent {
  id: number;
  type: string;
  environment: string;
  data: any;
}
export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'signed-out' | 'stopped';

// Every type the server sends (docs/events.md); EventSource delivers named events only to
// listeners of their name.
const kTypes = [
  'apply.started', 'apply.succeeded', 'apply.failed', 'env.destroyed', 'env.kept',
  'drift.detected', 'drift.resolved', 'drift.reminder', 'drift.flapping', 'watch.started',
  'watch.error', 'run.queued', 'run.planning', 'run.planned', 'run.awaiting_approval',
  'run.applying', 'run.applied', 'run.no_changes', 'run.canceled', 'run.errored',
  'run.interrupted', 'run.discarded', 'run.superseded', 'approval.requested',
  'approval.granted', 'approval.rejected', 'plan.created', 'lock.acquired', 'lock.released',
  'message',
];

type Listener = (e: LiveEvent) => void;

class Live {
  private source: EventSource | null = null;
  private listeners = new Set<Listener>();
  private stateListeners = new Set<(s: LiveState) => void>();
  private lastId = 0;
  private failures = 0;
  private timer: number | undefined;
  state: LiveState = 'stopped';
  /// How many streams this tab has opened (for the tests: one at a time, made again only after a cut).
  opened = 0;

  start() {
    if (this.source || this.state === 'signed-out') return;
    this.open();
  }

  stop(state: LiveState = 'stopped') {
    window.clearTimeout(this.timer);
    this.source?.close();
    this.source = null;
    this.setState(state);
  }

  subscribe(f: Listener): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  onState(f: (s: LiveState) => void): () => void {
    this.stateListeners.add(f);
    return () => this.stateListeners.delete(f);
  }

  private setState(s: LiveState) {
    this.state = s;
    document.documentElement.dataset.live = s;
    this.stateListeners.forEach((f) => f(s));
  }

  private open() {
    const url = '/api/v1/events' + (this.lastId > 0 ? '?last_event_id=' + this.lastId : '');
    const source = new EventSource(url, { withCredentials: true });
    this.source = source;
    this.opened++;
    this.setState(this.failures === 0 ? 'connecting' : 'reconnecting');
    source.onopen = () => {
      this.failures = 0;
      this.setState('live');
    };
    const deliver = (m: MessageEvent) => {
      const id = Number(m.lastEventId);
      if (id > 0) this.lastId = id;
      let data: any = null;
      try {
        data = JSON.parse(m.data);
      } catch {
        data = m.data;
      }
      const e: LiveEvent = {
        id,
        type: m.type === 'message' ? String(data?.type ?? 'message') : m.type,
        environment: String(data?.environment ?? data?.event?.environment ?? ''),
        data,
      };
      this.listeners.forEach((f) => f(e));
    };
    for (const t of kTypes) source.addEventListener(t, deliver as EventListener);
    source.onerror = () => {
      if (source.readyState === EventSource.CONNECTING) {
        // EventSource retries by itself, sending Last-Event-ID.
        this.setState('reconnecting');
        return;
      }
      source.close();
      this.source = null;
      this.retry();
    };
  }

  // The stream was refused: signed out (401 on the session), or try again after a backoff.
  private async retry() {
    this.setState('reconnecting');
    try {
      await request('GET', '/api/v1/session');
    } catch (e: any) {
      if (e?.status === 401) {
        this.stop('signed-out');
        return;
      }
    }
    this.failures++;
    const base = Math.min(30000, 500 * 2 ** Math.min(this.failures, 6));
    const delay = base / 2 + Math.random() * (base / 2);
    this.timer = window.setTimeout(() => this.open(), delay);
  }
}

export const live = new Live();
(window as any).__driftlessLive = live;
