/** Model-version stages (MLflow's). Import-free: the web UI shares it. */
export type Stage = 'None' | 'Staging' | 'Production' | 'Archived';
export const STAGES: readonly Stage[] = ['None', 'Staging', 'Production', 'Archived'];
