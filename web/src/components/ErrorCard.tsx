import type { ReactNode } from 'react';
import { ApiError, errorMessage } from '../api/http.js';

export interface ErrorCardProps {
  error: unknown;
  title?: string;
  onRetry?: () => void;
  children?: ReactNode;
}

function hint(err: unknown): string | null {
  if (!(err instanceof ApiError)) return null;
  if (err.status === 401) return 'Sign in (hospital account or API key) to continue.';
  if (err.status === 403) return "Your API key's role may not do this; ask an admin for a key with a higher role.";
  if (err.status === 503 && err.code === 'SERVICE_UNAVAILABLE') return 'That service is not running; start the platform with `npm start`.';
  if (err.status === 0) return 'Is the platform running? Check your connection.';
  return null;
}

/** An error from the API, with its code and message as the server wrote them. */
export function ErrorCard({ error, title = 'Something went wrong', onRetry, children }: ErrorCardProps) {
  if (!error) return null;
  const code = error instanceof ApiError ? error.code : null;
  const status = error instanceof ApiError && error.status ? error.status : null;
  const h = hint(error);
  return (
    <div className="error-card" role="alert" data-testid="error-card">
      <div className="error-title">
        <span aria-hidden="true">⚠</span> {title}
        {code && (
          <code className="error-code">
            {code}
            {status ? ` · ${status}` : ''}
          </code>
        )}
      </div>
      <p className="error-message">{errorMessage(error)}</p>
      {h && <p className="error-hint">{h}</p>}
      {children}
      {onRetry && (
        <button type="button" className="btn" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}
