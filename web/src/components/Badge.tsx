import type { ReactNode } from 'react';

export type Tone = 'neutral' | 'good' | 'bad' | 'warn' | 'info';

const TONES: Record<string, Tone> = {
  succeeded: 'good',
  completed: 'good',
  ready: 'good',
  no_drift: 'good',
  resolved: 'good',
  Production: 'good',
  passed: 'good',
  NORMAL: 'info',
  PNEUMONIA: 'bad',
  failed: 'bad',
  drift: 'bad',
  critical: 'bad',
  open: 'bad',
  refused: 'bad',
  running: 'info',
  active: 'info',
  Staging: 'info',
  queued: 'neutral',
  waiting: 'neutral',
  warning: 'warn',
  acknowledged: 'warn',
  cancelled: 'warn',
  interrupted: 'warn',
  insufficient_data: 'warn',
  Archived: 'neutral',
};

/** A small coloured status label; the tone follows the word unless given. */
export function Badge({ children, tone }: { children: ReactNode; tone?: Tone }) {
  const t = tone ?? (typeof children === 'string' ? TONES[children] : undefined) ?? 'neutral';
  return <span className={`badge badge-${t}`}>{typeof children === 'string' ? children.replace(/_/g, ' ') : children}</span>;
}
