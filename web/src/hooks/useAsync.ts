import { useCallback, useEffect, useRef, useState } from 'react';

export interface AsyncState<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  /** Loads again (keeps the old data visible meanwhile). */
  reload: () => void;
}

/**
 * Runs `load` when `deps` change and on `reload()`; a newer run wins over a slower older one.
 * Pass `null` as load to do nothing (e.g. until a selection exists).
 */
export function useAsync<T>(load: (() => Promise<T>) | null, deps: readonly unknown[]): AsyncState<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const [tick, setTick] = useState(0);
  const run = useRef(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    const fn = loadRef.current;
    if (!fn) {
      setData(undefined);
      setError(null);
      setLoading(false);
      return;
    }
    const id = ++run.current;
    setLoading(true);
    fn().then(
      (value) => {
        if (id !== run.current) return;
        setData(value);
        setError(null);
        setLoading(false);
      },
      (err: unknown) => {
        if (id !== run.current) return;
        setError(err);
        setLoading(false);
      },
    );
  }, [...deps, tick]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}
