import type { GateVerdict } from '../store/registry-store.js';

export interface GateInput {
  candidate: { version: number; val_auc: number | null };
  /** The version currently in Production, if any (and not the candidate itself). */
  production: { version: number; val_auc: number | null } | null;
  /** The largest AUC drop tolerated, e.g. 0.01. */
  margin: number;
  actor: string;
  now?: number;
}

/**
 * The promotion gate: a candidate may go to Production when its validation AUC is not worse than
 * the current production model's by more than `margin`. A candidate without a recorded AUC fails
 * (nothing to compare); with no production model, or one without an AUC, it passes.
 */
export function evaluateGate(input: GateInput): GateVerdict {
  const { candidate, production, margin } = input;
  const base = {
    forced: false,
    margin,
    candidate_auc: candidate.val_auc,
    production_version: production?.version ?? null,
    production_auc: production?.val_auc ?? null,
    decided_by: input.actor,
    decided_at: input.now ?? Date.now(),
  };
  if (candidate.val_auc === null || !Number.isFinite(candidate.val_auc)) {
    return { ...base, passed: false, delta: null, message: `version ${candidate.version} has no validation AUC recorded, so it cannot be compared with production` };
  }
  if (!production) {
    return { ...base, passed: true, delta: null, message: `no version is in Production; version ${candidate.version} (AUC ${fmt(candidate.val_auc)}) is promoted` };
  }
  if (production.val_auc === null || !Number.isFinite(production.val_auc)) {
    return { ...base, passed: true, delta: null, message: `production version ${production.version} has no validation AUC recorded; version ${candidate.version} (AUC ${fmt(candidate.val_auc)}) is promoted` };
  }
  const delta = candidate.val_auc - production.val_auc;
  // Tolerate float noise at the boundary (0.93 - 0.94 is -0.010000000000000009).
  const passed = delta >= -margin - 1e-12;
  const message = passed
    ? `validation AUC ${fmt(candidate.val_auc)} of version ${candidate.version} is within ${margin} of production version ${production.version} (${fmt(production.val_auc)}; delta ${signed(delta)})`
    : `validation AUC ${fmt(candidate.val_auc)} of version ${candidate.version} is ${fmt(-delta)} below production version ${production.version} (${fmt(production.val_auc)}), more than the allowed margin ${margin} (XRAY_PROMOTION_MARGIN)`;
  return { ...base, passed, delta, message };
}

function fmt(x: number): string {
  return x.toFixed(4);
}

function signed(x: number): string {
  return `${x >= 0 ? '+' : ''}${x.toFixed(4)}`;
}

export interface SiteGateInput {
  candidate: { version: number; onnx_sha256: string | null };
  /** The candidate's site calibration: its AUC on the site's cases, and the production version scored on the same cases then. */
  site: {
    auc: number;
    data: string;
    n: number;
    production: { version: number; onnx_sha256: string; site_auc: number | null } | null;
  };
  production: { version: number; onnx_sha256: string | null } | null;
  margin: number;
  actor: string;
  now?: number;
}

/**
 * The promotion gate for a site-calibrated candidate, on that site's data: its AUC on the site's
 * labelled cases against the production version's AUC on the same cases. A production version
 * with the candidate's weights has the same AUC there (a temperature and a threshold do not change
 * the ranking); another one must have been scored on the site's cases when the candidate was
 * calibrated, else the gate fails (calibrate again) — an admin may force it like any gate.
 */
export function evaluateSiteGate(input: SiteGateInput): GateVerdict {
  const { candidate, site, production, margin } = input;
  const base = {
    forced: false,
    margin,
    candidate_auc: site.auc,
    production_version: production?.version ?? null,
    decided_by: input.actor,
    decided_at: input.now ?? Date.now(),
    basis: { kind: 'site' as const, site_data: site.data, n: site.n },
  };
  const where = `on the site's ${site.n} cases (${site.data.slice(0, 12)}…)`;
  if (!production) {
    return { ...base, production_auc: null, passed: true, delta: null, message: `no version is in Production; version ${candidate.version} (site AUC ${fmt(site.auc)} ${where}) is promoted` };
  }
  let productionAuc: number | null = null;
  let how = '';
  if (production.onnx_sha256 && production.onnx_sha256 === candidate.onnx_sha256) {
    productionAuc = site.auc;
    how = ' (same weights)';
  } else if (site.production && production.onnx_sha256 && site.production.onnx_sha256 === production.onnx_sha256 && site.production.site_auc !== null) {
    productionAuc = site.production.site_auc;
  } else {
    return {
      ...base,
      production_auc: null,
      passed: false,
      delta: null,
      message: `production version ${production.version} was not scored on this site's cases when version ${candidate.version} was calibrated, so the two cannot be compared ${where}; calibrate again against the current production`,
    };
  }
  const delta = site.auc - productionAuc;
  const passed = delta >= -margin - 1e-12;
  const message = passed
    ? `site AUC ${fmt(site.auc)} of version ${candidate.version} is within ${margin} of production version ${production.version}${how} (${fmt(productionAuc)}; delta ${signed(delta)}) ${where}`
    : `site AUC ${fmt(site.auc)} of version ${candidate.version} is ${fmt(-delta)} below production version ${production.version} (${fmt(productionAuc)}) ${where}, more than the allowed margin ${margin} (XRAY_PROMOTION_MARGIN)`;
  return { ...base, production_auc: productionAuc, passed, delta, message };
}
