// The annotator's save queue. Changes go to the server one at a time, in order; a change that
// fails on the network or with a server error stays at the head of the queue and is retried with
// exponential backoff, and the queue lives in localStorage, so neither a flaky connection nor a
// reload loses a change. Every change is idempotent on the server (it sets, it never toggles),
// so re-sending one whose reply was lost does no harm.
import { api, ApiError } from "./api.js";

const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 15000;

/** Worth retrying: no answer at all, a timeout, throttling, a server error, or a sign-in or
 * CSRF problem the user can fix in another tab (the change waits for them). */
export function isRetryable(error) {
  if (!(error instanceof ApiError)) return true;
  return [401, 403, 408, 425, 429].includes(error.status) || error.status >= 500;
}

export class SaveQueue {
  constructor({ storageKey, onSaved, onRefused, onStatus }) {
    this.storageKey = storageKey;
    this.onSaved = onSaved;
    this.onRefused = onRefused;
    this.onStatus = onStatus;
    this.ops = this.#load();
    this.waiters = new Map();
    this.attempt = 0;
    this.running = false;
    this.wake = null;
    this.persisted = true;
  }

  get pending() {
    return this.ops.length;
  }

  /** Asset ids that changes still waiting in the queue will touch. */
  pendingAssetIds() {
    const ids = new Set();
    for (const op of this.ops) {
      if (op.body.asset_id !== undefined) ids.add(op.body.asset_id);
      for (const id of op.body.asset_ids ?? []) ids.add(id);
      for (const [id] of [...(op.body.added ?? []), ...(op.body.removed ?? [])]) ids.add(id);
    }
    return ids;
  }

  /** Queue a POST of `body` to `path`; resolves with the server's reply, or null if refused. */
  push(path, body) {
    const op = { id: `${Date.now()}-${Math.random().toString(36).slice(2)}`, path, body };
    this.ops.push(op);
    this.#persist();
    const done = new Promise((resolve) => this.waiters.set(op.id, resolve));
    this.run();
    return done;
  }

  /** Skip the rest of the current backoff wait. */
  retryNow() {
    if (this.wake) this.wake();
  }

  async run() {
    if (this.running) return;
    this.running = true;
    while (this.ops.length) {
      const op = this.ops[0];
      this.onStatus({ state: "saving", pending: this.ops.length });
      try {
        const result = await api("POST", op.path, op.body);
        this.#finish(op, result);
        this.onSaved(op, result);
      } catch (error) {
        if (isRetryable(error)) {
          this.attempt += 1;
          const delay = Math.min(RETRY_FIRST_MS * 2 ** (this.attempt - 1), RETRY_MAX_MS);
          this.onStatus({ state: "retrying", pending: this.ops.length, error, delay, attempt: this.attempt });
          await this.#sleep(delay);
        } else {
          // The server understood and refused (e.g. the image was deleted): retrying cannot help.
          this.#finish(op, null);
          this.onRefused(op, error);
        }
      }
    }
    this.running = false;
    this.onStatus({ state: "saved", pending: 0 });
  }

  #finish(op, result) {
    this.ops.shift();
    this.attempt = 0;
    this.#persist();
    const resolve = this.waiters.get(op.id);
    this.waiters.delete(op.id);
    if (resolve) resolve(result);
  }

  #sleep(ms) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  #load() {
    try {
      const ops = JSON.parse(localStorage.getItem(this.storageKey) ?? "[]");
      return Array.isArray(ops) ? ops : [];
    } catch {
      return [];
    }
  }

  #persist() {
    try {
      if (this.ops.length) localStorage.setItem(this.storageKey, JSON.stringify(this.ops));
      else localStorage.removeItem(this.storageKey);
      this.persisted = true;
    } catch {
      // Storage full or disabled: the queue still works for this page's lifetime.
      this.persisted = false;
    }
  }
}
