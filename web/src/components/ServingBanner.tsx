import type { ModelsResponse } from '../api/deployment.js';

/**
 * What the deployment could not load, said where people act on models (Models, Predict): which
 * version the alias wants, which one still answers requests, and why the load failed.
 */
export function ServingBanner({ problems, model }: { problems: ModelsResponse['problems'] | undefined; model?: string }) {
  const shown = (problems ?? []).filter((p) => !model || p.model === model);
  if (shown.length === 0) return null;
  return (
    <div className="banner-bad" role="alert" data-testid="serving-banner">
      {shown.map((p) => (
        <p key={`${p.model}@${p.alias}`}>
          <strong>Model not serving as promoted:</strong> {p.model}{' '}
          {p.wanted_version ? `v${p.wanted_version} (@${p.alias})` : `@${p.alias}`} could not be loaded —{' '}
          {p.serving_version ? <>predictions still come from <strong>v{p.serving_version}</strong>.</> : <>nothing is serving predictions.</>}{' '}
          <span className="small">Reason: {p.error.message}</span>
        </p>
      ))}
    </div>
  );
}
