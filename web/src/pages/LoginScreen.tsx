import { useId, useState, type FormEvent } from 'react';
import { ApiError, fetchWithAuth, setApiKey } from '../api/http.js';

export interface LoginScreenProps {
  reason: string | null;
  onDone: () => void;
  onCancel: () => void;
}

/** Asks for an API key when an API answered 401; the key is kept in session storage only. */
export function LoginScreen({ reason, onDone, onCancel }: LoginScreenProps) {
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
        <p>This platform requires an API key. Ask an admin for one (<code>xray keys create</code>); it is kept in this browser tab only.</p>
        {reason && <p className="small">Server: {reason}</p>}
        <label htmlFor={`${id}-key`}>API key</label>
        <input id={`${id}-key`} type="password" autoComplete="off" autoFocus value={key} onChange={(e) => setKey(e.target.value)} aria-invalid={error ? true : undefined} aria-describedby={error ? `${id}-err` : undefined} />
        {error && (
          <p id={`${id}-err`} className="field-error" role="alert">
            {error}
          </p>
        )}
        <div className="row">
          <button type="submit" className="btn primary" disabled={busy}>
            {busy ? 'Checking…' : 'Sign in'}
          </button>
          <button type="button" className="btn" onClick={onCancel}>
            Not now
          </button>
        </div>
      </form>
    </div>
  );
}
