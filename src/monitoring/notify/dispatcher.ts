import type { Logger } from 'pino';
import type { AlertStore } from '../store/alert-store.js';
import type { Alert, Channel, EmailSettings, RetryPolicy, WebhookSettings } from '../store/types.js';
import { severityRank } from '../store/types.js';
import { alertmanagerPayload, emailContent, slackPayload, type AlertEvent, type Notification } from './payloads.js';
import { sendWebhook } from './webhook.js';
import { sendEmail } from './email.js';

/** How a channel kind delivers; replaceable in tests of the dispatcher itself. */
export interface Senders {
  webhook(settings: WebhookSettings, payload: unknown): Promise<void>;
  email(settings: EmailSettings, message: { subject: string; text: string }): Promise<void>;
}

export const DEFAULT_SENDERS: Senders = { webhook: sendWebhook, email: sendEmail };

export interface DispatcherOptions {
  store: AlertStore;
  /** Channels configured by environment variables (not stored, not deletable). */
  envChannels: Channel[];
  defaultRetry: RetryPolicy;
  /** Base URL of the monitoring API, for links in notifications. */
  baseUrl: string;
  senders?: Senders;
  logger?: Logger;
  onAttempt?: (kind: string, outcome: 'delivered' | 'failed' | 'dead_letter') => void;
}

/** Delay before retry `attempt` (1-based count of failures so far): initial·2^(attempt−1), capped. */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, attempt - 1));
}

interface Delivery {
  channel: Channel;
  alert: Alert;
  payload: unknown;
  send: () => Promise<void>;
  attempts: number;
  lastError: string;
  timer: NodeJS.Timeout | null;
  done: () => void;
}

/**
 * Sends alert notifications to every enabled channel whose minimum severity the alert reaches,
 * off the request path. Each delivery is retried with exponential backoff (bounded attempts and
 * delay); after the last failure — or when the service stops first — it becomes a dead-letter
 * record.
 */
export class NotificationDispatcher {
  readonly #o: DispatcherOptions;
  readonly #senders: Senders;
  readonly #inflight = new Set<Delivery>();
  readonly #settled = new Set<Promise<void>>();
  #closed = false;

  constructor(options: DispatcherOptions) {
    this.#o = options;
    this.#senders = options.senders ?? DEFAULT_SENDERS;
  }

  /** Every channel: environment-configured first, then stored ones. */
  async channels(): Promise<Channel[]> {
    return [...this.#o.envChannels, ...(await this.#o.store.listChannels())];
  }

  /** Queues notifications for an alert event; returns the number of deliveries started. */
  async notify(alert: Alert, event: AlertEvent): Promise<number> {
    if (this.#closed) return 0;
    const targets = (await this.channels()).filter((c) => c.enabled && severityRank(alert.severity) >= severityRank(c.minSeverity));
    const n: Notification = { event, alert, url: `${this.#o.baseUrl.replace(/\/$/, '')}/alerts/${alert.id}` };
    for (const channel of targets) this.#start(channel, n);
    return targets.length;
  }

  /** Resolves when every delivery started so far has been delivered or dead-lettered. */
  async idle(): Promise<void> {
    while (this.#settled.size > 0) await Promise.allSettled([...this.#settled]);
  }

  #start(channel: Channel, n: Notification): void {
    let payload: unknown;
    let send: () => Promise<void>;
    if (channel.kind === 'webhook') {
      const settings = channel.settings;
      payload = settings.format === 'alertmanager' ? alertmanagerPayload(n, channel.name) : slackPayload(n);
      send = () => this.#senders.webhook(settings, payload);
    } else {
      const settings = channel.settings;
      const message = emailContent(n);
      payload = { ...message, to: settings.to };
      send = () => this.#senders.email(settings, message);
    }
    let done!: () => void;
    const settled = new Promise<void>((resolve) => (done = resolve));
    const delivery: Delivery = { channel, alert: n.alert, payload, send, attempts: 0, lastError: '', timer: null, done };
    this.#inflight.add(delivery);
    this.#settled.add(settled);
    void settled.then(() => this.#settled.delete(settled));
    void this.#attempt(delivery);
  }

  #policy(channel: Channel): RetryPolicy {
    return { ...this.#o.defaultRetry, ...(channel.settings.retry ?? {}) };
  }

  async #attempt(d: Delivery): Promise<void> {
    d.timer = null;
    if (this.#closed) return;
    d.attempts++;
    try {
      await d.send();
      this.#o.onAttempt?.(d.channel.kind, 'delivered');
      this.#finish(d);
      return;
    } catch (err) {
      d.lastError = (err as Error).message || String(err);
      this.#o.onAttempt?.(d.channel.kind, 'failed');
    }
    const policy = this.#policy(d.channel);
    if (this.#closed || d.attempts >= policy.attempts) {
      await this.#deadLetter(d);
      return;
    }
    const delay = backoffDelay(policy, d.attempts);
    this.#o.logger?.warn({ channel: d.channel.name, alert: d.alert.id, attempt: d.attempts, delay, err: d.lastError }, 'alert notification failed; retrying');
    // Kept referenced: a pending retry is work in flight; close() cancels it (and dead-letters it).
    d.timer = setTimeout(() => void this.#attempt(d), delay);
  }

  async #deadLetter(d: Delivery): Promise<void> {
    try {
      await this.#o.store.addDeadLetter({
        alertId: d.alert.id,
        channelId: d.channel.fromEnv ? null : d.channel.id,
        channelName: d.channel.name,
        channelKind: d.channel.kind,
        attempts: d.attempts,
        lastError: d.lastError || 'not attempted',
        payload: d.payload,
      });
      this.#o.onAttempt?.(d.channel.kind, 'dead_letter');
      this.#o.logger?.error({ channel: d.channel.name, alert: d.alert.id, attempts: d.attempts, err: d.lastError }, 'alert notification dead-lettered');
    } catch (err) {
      this.#o.logger?.error({ err, channel: d.channel.name, alert: d.alert.id }, 'could not record a dead letter');
    } finally {
      this.#finish(d);
    }
  }

  #finish(d: Delivery): void {
    this.#inflight.delete(d);
    d.done();
  }

  /** Stops retrying: deliveries still waiting become dead letters (the store must still be open). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const waiting = [...this.#inflight];
    for (const d of waiting) {
      if (d.timer) {
        clearTimeout(d.timer);
        d.lastError = `${d.lastError ? `${d.lastError}; ` : ''}service stopped before the next retry`;
        await this.#deadLetter(d);
      }
    }
    // Deliveries in the middle of a send settle on their own; wait a little for them.
    await Promise.race([this.idle(), new Promise((r) => setTimeout(r, 2000).unref?.())]);
  }
}
