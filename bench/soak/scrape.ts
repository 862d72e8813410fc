/**
 * One look at a worker's /metrics: the memory figures the soak run follows. The names
 * are those of src/metrics/definitions.ts (prom-client's process metrics carry the
 * `textstream_` prefix there too).
 */
export interface Reading {
  rssBytes: number | null;
  heapUsedBytes: number | null;
  /** Absent until the worker has a model (the gauge exports no sample before). */
  liveTensors: number | null;
  rowsWritten: number | null;
}

export const SCRAPED = {
  rssBytes: 'textstream_process_resident_memory_bytes',
  heapUsedBytes: 'textstream_nodejs_heap_size_used_bytes',
  liveTensors: 'textstream_model_live_tensors',
  rowsWritten: 'textstream_output_rows_total',
} as const satisfies Record<keyof Reading, string>;

/**
 * The sum of the samples of `name` in a Prometheus text exposition (one sample for the
 * label-less metrics read here), or null when it has none.
 */
export function metricValue(exposition: string, name: string): number | null {
  let total: number | null = null;
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(name)) continue;
    // `name 123` or `name{labels} 123`; not `name_suffix …`, a different metric.
    const rest = line.slice(name.length);
    if (!rest.startsWith(' ') && !rest.startsWith('{')) continue;
    const value = Number(rest.slice(rest.lastIndexOf('}') + 1).trim().split(' ')[0]);
    if (Number.isFinite(value)) total = (total ?? 0) + value;
  }
  return total;
}

export function readingFrom(exposition: string): Reading {
  return {
    rssBytes: metricValue(exposition, SCRAPED.rssBytes),
    heapUsedBytes: metricValue(exposition, SCRAPED.heapUsedBytes),
    liveTensors: metricValue(exposition, SCRAPED.liveTensors),
    rowsWritten: metricValue(exposition, SCRAPED.rowsWritten),
  };
}

/**
 * Scrapes `url`; null when the worker does not answer within `timeoutMs` (a scrape that
 * waits behind a long training step must not stall the sampling).
 */
export async function scrape(url: string, timeoutMs: number): Promise<Reading | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) return null;
    return readingFrom(await response.text());
  } catch {
    return null;
  }
}
