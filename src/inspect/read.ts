import { readOutputColumns } from '../report/read.js';

/** One output row, reduced to what `inspect` checks; `id` and `text` are never read. */
export interface InspectRow {
  score: number;
  predicted: number;
  label: number | null;
  modelVersion: number;
  source: string;
  partition: number;
  offset: bigint;
}

const COLUMNS = ['score', 'predicted', 'label', 'model_version', 'source', 'partition', 'offset'] as const;

/**
 * Reads one output file slice by slice (see readOutputColumns), only the columns above,
 * handing each slice to `onRows`. Returns the row count its footer declares.
 */
export async function readInspectRows(file: string, onRows: (rows: InspectRow[]) => void): Promise<{ declaredRows: number }> {
  const metadata = await readOutputColumns(file, COLUMNS, (objects) => onRows(objects.map(toRow)));
  return { declaredRows: Number(metadata.num_rows) };
}

function toRow(o: Record<string, unknown>): InspectRow {
  return {
    score: typeof o.score === 'number' ? o.score : NaN,
    predicted: Number(o.predicted),
    label: typeof o.label === 'number' ? o.label : null,
    modelVersion: Number(o.model_version),
    source: typeof o.source === 'string' ? o.source : String(o.source),
    partition: Number(o.partition),
    offset: typeof o.offset === 'bigint' ? o.offset : BigInt(Number(o.offset)),
  };
}
