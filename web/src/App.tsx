import { useEffect, useRef, useState, useSyncExternalStore, type ComponentType } from 'react';
import { getApiKey, onApiKeyChange, onUnauthorized, request, setApiKey } from './api/http.js';
import { getSession, loadAuthConfig, loadSession, onSessionChange, renewSession, signOut, type SessionInfo } from './api/auth.js';
import { useAsync } from './hooks/useAsync.js';
import { useInterval } from './hooks/useInterval.js';
import { Link, usePath } from './router.js';
import { DatasetsPage } from './pages/DatasetsPage.js';
import { LoginScreen } from './pages/LoginScreen.js';
import { ModelsPage } from './pages/ModelsPage.js';
import { MonitoringPage } from './pages/MonitoringPage.js';
import { PredictPage } from './pages/PredictPage.js';
import { RunsPage } from './pages/RunsPage.js';
import { TrainingPage } from './pages/TrainingPage.js';

interface PageDef {
  path: string;
  title: string;
  component: ComponentType;
}

const PAGES: PageDef[] = [
  { path: '/', title: 'Predict', component: PredictPage },
  { path: '/datasets', title: 'Datasets', component: DatasetsPage },
  { path: '/training', title: 'Training', component: TrainingPage },
  { path: '/runs', title: 'Runs', component: RunsPage },
  { path: '/models', title: 'Models', component: ModelsPage },
  { path: '/monitoring', title: 'Monitoring', component: MonitoringPage },
];

function NotFound() {
  return (
    <div className="page-header">
      <h1>Page not found</h1>
      <p className="page-lede">
        There is no page here. <Link href="/">Go to Predict</Link>.
      </p>
    </div>
  );
}

interface ServiceStatus {
  name: string;
  ready: boolean;
}

function ServiceDots() {
  const { data, reload } = useAsync(() => fetch('/api/services').then((r) => r.json() as Promise<{ services: ServiceStatus[] }>), []);
  useInterval(reload, 30_000);
  if (!data) return null;
  const down = data.services.filter((s) => !s.ready);
  return (
    <div className="services" title={data.services.map((s) => `${s.name}: ${s.ready ? 'ready' : 'not ready'}`).join('\n')}>
      <ul aria-label="Service status">
        {data.services.map((s) => (
          <li key={s.name}>
            <span className={`dot ${s.ready ? 'up' : 'down'}`} aria-hidden="true" />
            <span className="visually-hidden">
              {s.name} {s.ready ? 'ready' : 'not ready'}
            </span>
          </li>
        ))}
      </ul>
      <span className="services-text">{down.length === 0 ? 'All services ready' : `${down.map((s) => s.name).join(', ')} down`}</span>
    </div>
  );
}

function useApiKey(): string | null {
  return useSyncExternalStore(onApiKeyChange, getApiKey);
}

function useSession(): SessionInfo | null {
  return useSyncExternalStore(onSessionChange, getSession);
}

/** The person signed in with their hospital account, their role, and sign-out. */
function SignedInUser({ session }: { session: SessionInfo }) {
  return (
    <div className="signed-in" data-testid="signed-in-user">
      <span className="signed-in-name" title={session.user.email ?? session.user.id}>
        {session.user.name}
      </span>
      <span className="badge role">{session.user.role}</span>
      <button type="button" className="btn small ghost" onClick={() => void signOut()}>
        Sign out
      </button>
    </div>
  );
}

export function App() {
  const path = usePath();
  const key = useApiKey();
  const session = useSession();
  const [oidc, setOidc] = useState(false);
  const [login, setLogin] = useState<{ reason: string } | null>(null);
  // Remounts the page after signing in, so everything loads again with the key.
  const [epoch, setEpoch] = useState(0);
  const navRef = useRef<HTMLElement>(null);
  // On a phone the tab row scrolls sideways: keep the current page's tab in view.
  useEffect(() => {
    navRef.current?.querySelector<HTMLElement>('[aria-current=page]')?.scrollIntoView?.({ block: 'nearest', inline: 'center' });
  }, [path]);

  useEffect(
    () =>
      onUnauthorized((err) => {
        setLogin((cur) => cur ?? { reason: err.message });
      }),
    [],
  );

  const page = PAGES.find((p) => p.path === path);
  const Page = page?.component ?? NotFound;

  useEffect(() => {
    document.title = `${page?.title ?? 'Not found'} · xray-mlops`;
  }, [page]);

  // With auth off nothing ever answers 401; with it on, probe once so the login shows up front
  // (after learning whether hospital sign-in is offered, and who is signed in).
  useEffect(() => {
    void (async () => {
      const auth = await loadAuthConfig();
      setOidc(auth.oidc);
      if (auth.oidc) await loadSession();
      if (!getApiKey()) await request('model-registry', '/models', { query: { page_size: 1 } }).catch(() => {});
    })();
  }, []);

  // Renew the session a minute before it ends while the page is open (the identity provider decides).
  useEffect(() => {
    if (!session) return;
    const wait = Math.max(5_000, Date.parse(session.expires_at) - Date.now() - 60_000);
    const timer = setTimeout(() => void renewSession(), wait);
    return () => clearTimeout(timer);
  }, [session]);

  return (
    <>
      <a href="#main" className="skip-link">
        Skip to content
      </a>
      <header className="topbar">
        <Link href="/" className="brand" aria-label="xray-mlops home">
          <svg width="22" height="22" viewBox="0 0 16 16" aria-hidden="true">
            <rect width="16" height="16" rx="3" fill="#fff" />
            <path d="M5 3v10M11 3v10M5 8h6" stroke="#0b3d91" strokeWidth="1.8" />
          </svg>
          xray-mlops
        </Link>
        <nav aria-label="Main" ref={navRef}>
          <ul>
            {PAGES.map((p) => (
              <li key={p.path}>
                <Link href={p.path} aria-current={p.path === path ? 'page' : undefined}>
                  {p.title}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="topbar-right">
          <ServiceDots />
          {session && !key ? (
            <SignedInUser session={session} />
          ) : key ? (
            <button type="button" className="btn small ghost" onClick={() => setApiKey(null)}>
              Sign out
            </button>
          ) : (
            <button type="button" className="btn small ghost" onClick={() => setLogin({ reason: '' })}>
              API key…
            </button>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Page key={`${path}:${epoch}`} />
      </main>
      <footer className="footer">
        Decision support only — every prediction needs a clinician's review. APIs: <a href="/api/deployment/docs">deployment</a> · <a href="/api/model-registry/docs">registry</a> ·{' '}
        <a href="/api/monitoring/docs">monitoring</a>
      </footer>
      {login && (
        <LoginScreen
          reason={login.reason || null}
          oidc={oidc}
          returnTo={path}
          onDone={() => {
            setLogin(null);
            setEpoch((e) => e + 1);
          }}
          onCancel={() => setLogin(null)}
        />
      )}
    </>
  );
}
