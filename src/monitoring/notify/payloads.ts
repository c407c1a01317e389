import type { Alert } from '../store/types.js';

export type AlertEvent = 'firing' | 'resolved';

/** What a notification says, independent of the channel. */
export interface Notification {
  event: AlertEvent;
  alert: Alert;
  /** Link to the alert in the monitoring API. */
  url: string;
}

const ZERO_TIME = '0001-01-01T00:00:00Z';

function title(n: Notification): string {
  const a = n.alert;
  return `[${n.event === 'firing' ? 'FIRING' : 'RESOLVED'}] [${a.severity}] ${a.rule} on ${a.model} v${a.version}`;
}

/** Slack incoming-webhook message: `text` (fallback) plus Block Kit `blocks`. */
export function slackPayload(n: Notification): { text: string; blocks: unknown[] } {
  const a = n.alert;
  const text = `${title(n)}: ${a.summary}`;
  return {
    text,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: title(n).slice(0, 150) } },
      { type: 'section', text: { type: 'mrkdwn', text: a.summary } },
      {
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: `alert \`${a.id}\` · seen ${a.occurrences}× since ${new Date(a.firstSeen).toISOString()} · <${n.url}|details>`,
          },
        ],
      },
    ],
  };
}

function labels(a: Alert): Record<string, string> {
  return { alertname: a.rule, severity: a.severity, model: a.model, version: a.version, service: 'monitoring' };
}

/**
 * The body Alertmanager posts to a webhook receiver (webhook_config, version 4), so receivers
 * written for Alertmanager accept our alerts unchanged.
 */
export function alertmanagerPayload(n: Notification, receiver: string): Record<string, unknown> {
  const a = n.alert;
  const l = labels(a);
  const annotations = { summary: a.summary, description: title(n) };
  const endsAt = n.event === 'resolved' ? new Date(a.resolvedAt ?? Date.now()).toISOString() : ZERO_TIME;
  return {
    version: '4',
    groupKey: `{}:{alertname="${a.rule}", model="${a.model}", version="${a.version}"}`,
    truncatedAlerts: 0,
    status: n.event,
    receiver,
    groupLabels: { alertname: a.rule },
    commonLabels: l,
    commonAnnotations: annotations,
    externalURL: n.url.replace(/\/alerts\/[^/]+$/, ''),
    alerts: [
      {
        status: n.event,
        labels: l,
        annotations,
        startsAt: new Date(a.firstSeen).toISOString(),
        endsAt,
        generatorURL: n.url,
        fingerprint: a.fingerprint,
      },
    ],
  };
}

export function emailContent(n: Notification): { subject: string; text: string } {
  const a = n.alert;
  const lines = [
    a.summary,
    '',
    `Rule:        ${a.rule}`,
    `Model:       ${a.model} v${a.version}`,
    `Severity:    ${a.severity}`,
    `Status:      ${n.event === 'firing' ? a.status : 'resolved'}`,
    `First seen:  ${new Date(a.firstSeen).toISOString()}`,
    `Occurrences: ${a.occurrences}`,
    `Alert:       ${n.url}`,
  ];
  if (a.details) lines.push('', 'Details:', JSON.stringify(a.details, null, 2));
  return { subject: title(n), text: lines.join('\n') };
}
