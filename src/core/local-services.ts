/**
 * What services running in this process offer each other (embedded mode). A service provides an
 * implementation under its client's key when it boots; another service's client looks it up on
 * each call and uses it instead of HTTP, so boot order does not matter.
 */
export class LocalServices {
  readonly #impls = new Map<string, unknown>();

  /** Offers `impl` under `key`; the returned function withdraws it (on close). */
  provide<T>(key: string, impl: T): () => void {
    this.#impls.set(key, impl);
    return () => {
      if (this.#impls.get(key) === impl) this.#impls.delete(key);
    };
  }

  get<T>(key: string): T | undefined {
    return this.#impls.get(key) as T | undefined;
  }
}

/** An object whose every property is read from `pick()` at the time of use (methods bound to it). */
export function delegateTo<T extends object>(pick: () => T): T {
  return new Proxy({} as T, {
    get(_target, prop) {
      const impl = pick();
      const value: unknown = Reflect.get(impl, prop, impl);
      return typeof value === 'function' ? value.bind(impl) : value;
    },
  });
}

/**
 * `remote` (an HTTP client), except that each call goes to the implementation a service in this
 * process offers under `key` when there is one: the one place where in-process vs HTTP is decided.
 */
export function preferLocal<T extends object>(local: LocalServices, key: string, remote: T): T {
  return delegateTo(() => local.get<T>(key) ?? remote);
}
