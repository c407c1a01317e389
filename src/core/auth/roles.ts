export const ROLES = ['viewer', 'clinician', 'ml-engineer', 'admin'] as const;
export type Role = (typeof ROLES)[number];
/** What a route may declare: a minimum role, or 'public' (health, readiness, metrics, docs). */
export type RouteAccess = Role | 'public';

const RANK: Record<Role, number> = { viewer: 0, clinician: 1, 'ml-engineer': 2, admin: 3 };

/**
 * Roles are ordered: viewer < clinician < ml-engineer < admin. A clinician may predict and confirm
 * diagnoses; an ML engineer may also ingest, train and register; an admin may also force gates,
 * hard-delete and manage keys.
 */
export function hasRole(actual: Role, required: Role): boolean {
  return RANK[actual] >= RANK[required];
}

export interface Principal {
  id: string;
  name: string;
  role: Role;
  /** true when auth is off and every caller acts as the local admin. */
  anonymous: boolean;
}
