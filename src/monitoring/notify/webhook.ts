import type { WebhookSettings } from '../store/types.js';

/**
 * POSTs a JSON payload; any non-2xx status or network error throws (the dispatcher retries).
 */
export async function sendWebhook(settings: WebhookSettings, payload: unknown): Promise<void> {
  const res = await fetch(settings.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'xray-mlops-monitoring', ...(settings.headers ?? {}) },
    body: JSON.stringify(payload),
    signal: AbortSignal.timeout(settings.timeoutMs ?? 5000),
    redirect: 'error',
  });
  // Drain the body so the connection can be reused.
  const text = await res.text().catch(() => '');
  if (!res.ok) throw new Error(`webhook answered HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`);
}
