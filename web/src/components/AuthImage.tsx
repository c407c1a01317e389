import { useAsync } from '../hooks/useAsync.js';
import { useObjectUrl } from '../hooks/useObjectUrl.js';

export interface AuthImageProps {
  /** Loads the image bytes (through the API client, so the API key is sent). */
  load: () => Promise<Blob>;
  /** Changes when a different image should be loaded. */
  cacheKey: string;
  alt: string;
  className?: string;
  width?: number;
  height?: number;
}

/** An <img> whose bytes come from an authenticated API call (plain <img src> cannot send the key). */
export function AuthImage({ load, cacheKey, alt, className, width, height }: AuthImageProps) {
  const { data, error } = useAsync(load, [cacheKey]);
  const url = useObjectUrl(data);
  if (error) return <span className={`img-missing ${className ?? ''}`} role="img" aria-label={`${alt} (could not load)`} style={{ width, height }} />;
  if (!url) return <span className={`img-loading ${className ?? ''}`} role="img" aria-label={`${alt} (loading)`} style={{ width, height }} />;
  return <img src={url} alt={alt} className={className} width={width} height={height} loading="lazy" />;
}
