import { useId, useState, type FormEvent } from 'react';
import { ApiError, fetchWithAuth, setApiKey } from '../api/http.js';
import { signInUrl } from '../api/auth.js';

export interface LoginScreenProps {
  reason: string | null;
  /** Sign-in with the hospital's identity provider is configured: offer it first. */
  oidc: boolean;
  /** Where to come back to after signing in at the identity provider. */
  returnTo: string;
  onDone: () => void;
  onCancel: () => void;
}

/**
 * Shown when an API answered 401: "Sign in with your hospital account" (the identity provider,
 * when configured), or an API key, kept in session storage only.
 */
export function LoginScreen({ reason, oidc, returnTo, onDone, onCancel }: LoginScreenProps) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const id = useId();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const trimmed = key.trim();
    if (!trimmed) {
      setError('Enter an API key.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      // Any valid key has at least the viewer role, which may list models.
      await fetchWithAuth('/api/model-registry/models?page_size=1', { headers: { authorization: `Bearer ${trimmed}` } });
      setApiKey(trimmed);
      onDone();
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? 'That key is unknown or revoked.' : `Could not check the key: ${(err as Error).message}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div
      className="login-backdrop"
      role="dialog"
      aria-modal="true"
      aria-labelledby={`${id}-title`}
      onKeyDown={(e) => {
        if (e.key === 'Escape') onCancel();
      }}
    >
      <form className="login" onSubmit={submit} data-testid="login">
        <h1 id={`${id}-title`}>Sign in</h1>
        {oidc && (
          <>
            <a className="btn primary sso" href={signInUrl(returnTo)} data-testid="sign-in-hospital">
              Sign in with your hospital account
            </a>
            <p className="small">Your role here comes from your groups at the hospital. Machines and scripts use API keys instead:</p>
          </>
        )}
        {!oidc && <p>This platform requires an API key. Ask an admin for one (<code>xray keys create</code>); it is kept in this browser tab only.</p>}
        {reason && <p className="small">Server: {reason}</p>}
        <label htmlFor={`${id}-key`}>API key</label>
        <input id={`${id}-key`} type="password" autoComplete="off" autoFocus value={key} onChange={(e) => setKey(e.target.value)} aria-invalid={error ? true : undefined} aria-describedby={error ? `${id}-err` : undefined} />
        {error && (
          <p id={`${id}-err`} className="field-error" role="alert">
            {error}
          </p>
        )}
        <div className="row">
          <button type="submit" className={oidc ? 'btn' : 'btn primary'} disabled={busy}>
            {busy ? 'Checking…' : oidc ? 'Sign in with the key' : 'Sign in'}
          </button>
          <button type="button" className="btn" onClick={onCancel}>
            Not now
          </button>
        </div>
      </form>
    </div>
  );
}
