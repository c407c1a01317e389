/** Paging in every store and API: a page size and an opaque token in, items and the next token out. */

export interface PageRequest {
  pageSize?: number;
  pageToken?: string;
}

/** A page of results and the token for the next one (absent on the last page). */
export interface Page<T> {
  items: T[];
  nextPageToken?: string;
}
