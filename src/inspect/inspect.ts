import { createReadStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { SourceError } from '../errors.js';
import { partitionDirectory } from '../sinks/parquet-layout.js';
import type { PartitionSummary } from '../report/aggregate.js';
import { holdsSource, scanOutputLayout, type PartitionFiles, type RangeFile } from './layout.js';
import { readInspectRows, type InspectRow } from './read.js';

/** Kinds of inconsistency; any of them makes `inspect` exit 1 (gaps only without allowGaps). */
export const ProblemKinds = {
  /** Offsets missing between or inside files, with no dead letter for them. */
  GAP: 'gap',
  /** Two files' name ranges share offsets. */
  OVERLAP: 'overlap',
  /** The offsets inside a file do not match its name (first, last, or row count). */
  NAME_MISMATCH: 'name-mismatch',
  /** Offsets inside a file go backwards or repeat. */
  UNORDERED: 'unordered',
  /** Rows whose source/partition columns are not the folder they are in. */
  WRONG_PARTITION: 'wrong-partition',
  /** A .parquet file outside the layout, or one that cannot be read. */
  UNREADABLE: 'unreadable',
} as const;
export type ProblemKind = (typeof ProblemKinds)[keyof typeof ProblemKinds];

export interface Problem {
  kind: ProblemKind;
  /** `<pipeline>/input=<source>/partition-<p>`, or null for a file outside the layout. */
  partition: string | null;
  /** The file(s) concerned, relative to the inspected folder. */
  files: string[];
  /** The offsets concerned (inclusive), as strings: offsets are int64. */
  from: string | null;
  to: string | null;
  message: string;
}

/** The report's per-partition figures (offsets as decimal strings), plus what inspect checks. */
export interface PartitionReport extends PartitionSummary {
  /** A folder of the legacy layout `<key>=<source>/partition=<p>` (see legacyFolders). */
  legacy: boolean;
  /** Offsets between firstOffset and lastOffset with no row. */
  missingOffsets: number;
  /** How many of those a dead letter accounts for. */
  deadLetteredOffsets: number;
  problems: number;
}

export interface InspectReport {
  dir: string;
  consistent: boolean;
  files: number;
  rows: number;
  partitions: PartitionReport[];
  scores: {
    mean: number | null;
    min: number | null;
    max: number | null;
    /** Rows whose score is not a finite number; left out of the figures above. */
    nonFinite: number;
    /** 10 bins of width 0.1 over [0, 1]; 1.0 falls in the last. */
    histogram: Array<{ from: number; to: number; rows: number }>;
  };
  labels: {
    labelled: number;
    unlabelled: number;
    /** Fraction of labelled rows whose `predicted` equals `label`; null without labels. */
    accuracy: number | null;
    byLabel: Array<{ label: number; rows: number; correct: number }>;
  };
  modelVersions: { min: number; max: number } | null;
  deadLetters: {
    files: string[];
    total: number;
    byReason: Record<string, number>;
    unreadable: number;
    /** Set when there is output but no dead-letter file: a Kafka worker's letters are in a topic. */
    note: string | null;
  };
  /**
   * Partition folders of the legacy layout, which keep pandas and Spark from reading the
   * folder as a dataset, and where they belong (relative paths).
   */
  legacyFolders: Array<{ folder: string; movesTo: string }>;
  tempFiles: Array<{ path: string; bytes: number }>;
  problems: Problem[];
  /** Gaps accepted with allowGaps, still listed. */
  warnings: Problem[];
}

export interface InspectOptions {
  dir: string;
  /** Report unexplained missing offsets as warnings instead of problems (Kafka: transaction markers, compaction). */
  allowGaps?: boolean;
  /** Called before reading each Parquet file (for a progress bar). */
  onFile?: (done: number, total: number) => void;
}

const BINS = 10;

/** A run of missing offsets in one partition, and how many dead letters fall in it. */
interface Hole {
  from: bigint;
  to: bigint;
  covered: number;
  files: string[];
  where: string;
}

/**
 * Checks a run's outputs: reads every published file once, one at a time and only the
 * columns needed, so memory grows with the number of files and of missing-offset runs,
 * never with rows. Dead letters are streamed after, to account for missing offsets.
 */
export async function inspectOutput(options: InspectOptions): Promise<InspectReport> {
  const dir = options.dir;
  const layout = await scanOutputLayout(dir);
  const rel = (file: string): string => path.relative(dir, file) || file;
  const problems: Problem[] = [];
  const stats = new RowStats();
  const partitions: PartitionReport[] = [];
  const holesByPartition = new Map<PartitionFiles, Hole[]>();
  const total = layout.partitions.reduce((n, p) => n + p.files.length, 0);
  let done = 0;
  let rows = 0;

  for (const stray of layout.strayFiles) {
    problems.push(problem(ProblemKinds.UNREADABLE, null, [rel(stray.path)], null, null, `${rel(stray.path)}: ${stray.reason}; not read`));
  }

  for (const p of layout.partitions) {
    const holes: Hole[] = [];
    const report: PartitionReport = {
      pipeline: p.pipeline,
      legacy: p.legacy,
      source: p.source,
      partition: p.partition,
      files: p.files.length,
      rows: 0,
      firstOffset: null,
      lastOffset: null,
      missingOffsets: 0,
      deadLetteredOffsets: 0,
      problems: 0,
    };
    const before = problems.length;
    let previous: RangeFile | null = null;
    for (const file of p.files) {
      options.onFile?.(done, total);
      const read = await checkFile(p, file, rel, stats, problems, holes);
      report.rows += read;
      rows += read;
      if (previous) betweenFiles(p, previous, file, rel, problems, holes);
      if (previous === null || file.last > previous.last) previous = file;
      done++;
    }
    report.firstOffset = p.files[0]?.first.toString() ?? null;
    report.lastOffset = previous?.last.toString() ?? null;
    report.problems = problems.length - before;
    holes.sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
    holesByPartition.set(p, holes);
    partitions.push(report);
  }
  options.onFile?.(done, total);

  // Dead letters: counted by reason, and matched against the missing offsets.
  const letters = { files: layout.deadLetterFiles.map(rel), total: 0, byReason: new Map<string, number>(), unreadable: 0 };
  for (const file of layout.deadLetterFiles) {
    const folder = path.dirname(path.resolve(file));
    // `<pipeline>/_dead-letters/<input>.jsonl`, or the legacy `<pipeline>/dead-letters.jsonl`.
    const pipeline = path.basename(path.basename(folder).startsWith('_') ? path.dirname(folder) : folder);
    const candidates = layout.partitions.filter((p) => p.pipeline === pipeline);
    const scope = candidates.length > 0 ? candidates : layout.partitions;
    await readDeadLetters(file, letters, (source, partition, offset) => {
      for (const p of scope) {
        if (!holdsSource(p, source) || p.partition !== partition) continue;
        const hole = findHole(holesByPartition.get(p)!, offset);
        if (hole) hole.covered++;
      }
    });
  }

  const warnings: Problem[] = [];
  layout.partitions.forEach((p, i) => {
    const report = partitions[i]!;
    for (const hole of holesByPartition.get(p)!) {
      const size = Number(hole.to - hole.from + 1n);
      const covered = Math.min(size, hole.covered);
      report.missingOffsets += size;
      report.deadLetteredOffsets += covered;
      if (covered >= size) continue;
      const range = hole.from === hole.to ? `offset ${hole.from} is` : `offsets ${hole.from}–${hole.to} are`;
      const explained = covered > 0 ? `only ${covered} of ${size} have a dead letter` : 'no dead letter accounts for them';
      const gap = problem(ProblemKinds.GAP, p.label, hole.files, hole.from, hole.to, `${p.label}: ${range} missing ${hole.where}; ${explained}`);
      if (options.allowGaps) warnings.push(gap);
      else {
        problems.push(gap);
        report.problems++;
      }
    }
  });

  const legacyFolders = layout.partitions
    .filter((p) => p.legacy)
    .map((p) => {
      const folder = path.dirname(p.files[0]!.path);
      return { folder: rel(folder), movesTo: rel(partitionDirectory({ dir: path.dirname(path.dirname(path.dirname(folder))), pipeline: p.pipeline }, p.source, p.partition)) };
    });
  return {
    dir,
    consistent: problems.length === 0,
    files: total,
    rows,
    partitions,
    scores: stats.scores(),
    labels: stats.labels(),
    modelVersions: stats.modelVersions(),
    deadLetters: {
      files: letters.files,
      total: letters.total,
      byReason: Object.fromEntries([...letters.byReason].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))),
      unreadable: letters.unreadable,
      note:
        layout.deadLetterFiles.length === 0 && layout.partitions.length > 0
          ? 'no dead-letter file here: Kafka workers write dead letters to the dead-letter topic (deadLetter.topic), ' +
            'so missing offsets cannot be matched against them here'
          : null,
    },
    tempFiles: layout.tempFiles.map((t) => ({ path: rel(t.path), bytes: t.bytes })),
    legacyFolders,
    problems,
    warnings,
  };
}

/** Reads one file, checks its rows against its name and folder; returns the rows read. */
async function checkFile(
  p: PartitionFiles,
  file: RangeFile,
  rel: (f: string) => string,
  stats: RowStats,
  problems: Problem[],
  holes: Hole[],
): Promise<number> {
  const name = rel(file.path);
  // One object, not loose lets: TypeScript does not see assignments made in the callback.
  const seen = {
    count: 0,
    first: null as bigint | null,
    last: null as bigint | null,
    unordered: 0,
    firstUnordered: '',
    wrongPartition: 0,
    firstWrong: '',
  };
  let declared: number;
  try {
    ({ declaredRows: declared } = await readInspectRows(file.path, (slice: InspectRow[]) => {
      for (const row of slice) {
        stats.add(row);
        if (!holdsSource(p, row.source) || row.partition !== p.partition) {
          if (seen.wrongPartition++ === 0) seen.firstWrong = `offset ${row.offset} has source ${JSON.stringify(row.source)} partition ${row.partition}`;
        }
        const last = seen.last;
        if (last !== null && row.offset <= last) {
          if (seen.unordered++ === 0) seen.firstUnordered = `offset ${row.offset} after ${last} (row ${seen.count})`;
        } else if (last !== null && row.offset > last + 1n) {
          holes.push({ from: last + 1n, to: row.offset - 1n, covered: 0, files: [name], where: `inside ${file.name}` });
        }
        seen.first ??= row.offset;
        if (last === null || row.offset > last) seen.last = row.offset;
        seen.count++;
      }
    }));
  } catch (err) {
    const message = err instanceof SourceError ? err.message : `${name}: ${String(err)}`;
    problems.push(problem(ProblemKinds.UNREADABLE, p.label, [name], file.first, file.last, message));
    return seen.count;
  }
  const { count, first, last, unordered, firstUnordered, wrongPartition, firstWrong } = seen;
  const range = (a: bigint | null, b: bigint | null): string => (a === null ? 'no rows' : `offsets ${a}–${b}`);
  if (first !== file.first || last !== file.last) {
    problems.push(
      problem(ProblemKinds.NAME_MISMATCH, p.label, [name], file.first, file.last, `${name}: its name says offsets ${file.first}–${file.last}, its rows hold ${range(first, last)}`),
    );
  }
  if (declared !== count) {
    problems.push(problem(ProblemKinds.NAME_MISMATCH, p.label, [name], file.first, file.last, `${name}: footer declares ${declared} rows, ${count} were read`));
  }
  if (unordered > 0) {
    problems.push(
      problem(ProblemKinds.UNORDERED, p.label, [name], first, last, `${name}: offsets go backwards or repeat ${unordered} time(s), first at ${firstUnordered}`),
    );
  }
  if (wrongPartition > 0) {
    problems.push(
      problem(
        ProblemKinds.WRONG_PARTITION,
        p.label,
        [name],
        first,
        last,
        `${name}: ${wrongPartition} row(s) belong elsewhere (folder is source ${JSON.stringify(p.source)} partition ${p.partition}; ${firstWrong})`,
      ),
    );
  }
  return count;
}

/** Compares consecutive name ranges: an overlap is a problem, a gap a run of missing offsets. */
function betweenFiles(p: PartitionFiles, prev: RangeFile, next: RangeFile, rel: (f: string) => string, problems: Problem[], holes: Hole[]): void {
  const names = [rel(prev.path), rel(next.path)];
  const ranges = `${prev.name} (${prev.first}–${prev.last}) and ${next.name} (${next.first}–${next.last})`;
  if (next.first <= prev.last) {
    const to = next.last < prev.last ? next.last : prev.last;
    problems.push(problem(ProblemKinds.OVERLAP, p.label, names, next.first, to, `${p.label}: ${ranges} overlap on offsets ${next.first}–${to}`));
  } else if (next.first > prev.last + 1n) {
    holes.push({ from: prev.last + 1n, to: next.first - 1n, covered: 0, files: names, where: `between ${ranges}` });
  }
}

function findHole(holes: Hole[], offset: bigint): Hole | null {
  let lo = 0;
  let hi = holes.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const hole = holes[mid]!;
    if (offset < hole.from) hi = mid - 1;
    else if (offset > hole.to) lo = mid + 1;
    else return hole;
  }
  return null;
}

/** The fields of a dead-letter line (DeadLetterLine) that matter here, unchecked. */
interface LetterFields {
  reason?: unknown;
  source?: unknown;
  partition?: unknown;
  offset?: unknown;
}

/** Streams a dead-letter file (letters hold the original message, so it can be large). */
async function readDeadLetters(
  file: string,
  into: { total: number; byReason: Map<string, number>; unreadable: number },
  onLetter: (source: string, partition: number, offset: bigint) => void,
): Promise<void> {
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      if (line.trim() === '') continue;
      let letter: LetterFields | null;
      try {
        letter = JSON.parse(line) as LetterFields | null;
      } catch {
        letter = null;
      }
      into.total++;
      if (!letter || typeof letter.reason !== 'string' || letter.reason === '') {
        into.unreadable++;
        continue;
      }
      into.byReason.set(letter.reason, (into.byReason.get(letter.reason) ?? 0) + 1);
      if (typeof letter.source === 'string' && typeof letter.partition === 'number' && /^\d+$/u.test(String(letter.offset))) {
        onLetter(letter.source, letter.partition, BigInt(String(letter.offset)));
      }
    }
  } catch (err) {
    throw new SourceError(`cannot read dead letters ${file}: ${String(err)}`, { cause: err });
  }
}

function problem(kind: ProblemKind, partition: string | null, files: string[], from: bigint | null, to: bigint | null, message: string): Problem {
  return { kind, partition, files, from: from?.toString() ?? null, to: to?.toString() ?? null, message };
}

/** Fixed-size folds of the rows: histogram, mean, label counts, model versions. */
class RowStats {
  #bins = new Array<number>(BINS).fill(0);
  #sum = 0;
  #finite = 0;
  #nonFinite = 0;
  #min = Infinity;
  #max = -Infinity;
  #unlabelled = 0;
  #byLabel = new Map<number, { rows: number; correct: number }>();
  #vMin = Infinity;
  #vMax = -Infinity;

  add(row: InspectRow): void {
    if (Number.isFinite(row.score)) {
      this.#finite++;
      this.#sum += row.score;
      if (row.score < this.#min) this.#min = row.score;
      if (row.score > this.#max) this.#max = row.score;
      this.#bins[Math.min(BINS - 1, Math.max(0, Math.floor(row.score * BINS)))]!++;
    } else this.#nonFinite++;
    if (row.label === null) this.#unlabelled++;
    else {
      const entry = this.#byLabel.get(row.label) ?? { rows: 0, correct: 0 };
      entry.rows++;
      if (row.predicted === row.label) entry.correct++;
      this.#byLabel.set(row.label, entry);
    }
    if (Number.isFinite(row.modelVersion)) {
      if (row.modelVersion < this.#vMin) this.#vMin = row.modelVersion;
      if (row.modelVersion > this.#vMax) this.#vMax = row.modelVersion;
    }
  }

  scores(): InspectReport['scores'] {
    return {
      mean: this.#finite > 0 ? this.#sum / this.#finite : null,
      min: this.#finite > 0 ? this.#min : null,
      max: this.#finite > 0 ? this.#max : null,
      nonFinite: this.#nonFinite,
      histogram: this.#bins.map((rows, i) => ({ from: i / BINS, to: (i + 1) / BINS, rows })),
    };
  }

  labels(): InspectReport['labels'] {
    const byLabel = [...this.#byLabel].sort((a, b) => a[0] - b[0]).map(([label, e]) => ({ label, ...e }));
    const labelled = byLabel.reduce((n, e) => n + e.rows, 0);
    const correct = byLabel.reduce((n, e) => n + e.correct, 0);
    return { labelled, unlabelled: this.#unlabelled, accuracy: labelled > 0 ? correct / labelled : null, byLabel };
  }

  modelVersions(): InspectReport['modelVersions'] {
    return this.#vMin <= this.#vMax ? { min: this.#vMin, max: this.#vMax } : null;
  }
}
