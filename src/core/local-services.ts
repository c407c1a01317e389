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
