import type { InspectReport, Problem } from './inspect.js';

/** The human-readable form of an inspection: summary, partition table, histogram, problems. */
export function formatInspectReport(r: InspectReport): string {
  const out: string[] = [`textstream inspect of ${r.dir}`];
  const line = (label: string, value: string): void => {
    out.push(`  ${label.padEnd(18)}${value}`);
  };
  line('files', `${r.files} Parquet file${r.files === 1 ? '' : 's'}${r.tempFiles.length > 0 ? `, ${r.tempFiles.length} temporary (not read)` : ''}`);
  line('rows', count(r.rows));
  line('partitions', String(r.partitions.length));
  line('model versions', r.modelVersions ? `${r.modelVersions.min} – ${r.modelVersions.max}` : '–');
  line('score mean', r.scores.mean === null ? '–' : `${r.scores.mean.toFixed(4)} (min ${r.scores.min!.toFixed(4)}, max ${r.scores.max!.toFixed(4)})`);
  if (r.scores.nonFinite > 0) line('non-finite scores', count(r.scores.nonFinite));
  const labels = r.labels.byLabel.map((l) => `label ${l.label}: ${count(l.rows)}`).join(', ');
  line(
    'accuracy',
    r.labels.accuracy === null
      ? `– (no labelled rows; ${count(r.labels.unlabelled)} unlabelled)`
      : `${(r.labels.accuracy * 100).toFixed(1)} % of ${count(r.labels.labelled)} labelled (${labels}; ${count(r.labels.unlabelled)} unlabelled)`,
  );
  const reasons = Object.entries(r.deadLetters.byReason).map(([reason, n]) => `${reason} ${count(n)}`);
  if (r.deadLetters.unreadable > 0) reasons.push(`unreadable lines ${count(r.deadLetters.unreadable)}`);
  line(
    'dead letters',
    r.deadLetters.files.length === 0
      ? 'no dead-letter file'
      : `${count(r.deadLetters.total)} in ${r.deadLetters.files.length} file${r.deadLetters.files.length === 1 ? '' : 's'}${reasons.length > 0 ? ` (${reasons.join(', ')})` : ''}`,
  );
  if (r.deadLetters.note) line('', r.deadLetters.note);

  if (r.partitions.length > 0) {
    out.push('', 'Partitions');
    const rows = [
      ['pipeline', 'source', 'partition', 'files', 'rows', 'first offset', 'last offset', 'missing', 'dead-lettered', 'status'],
      ...r.partitions.map((p) => [
        p.pipeline,
        p.legacy ? `${p.source} (old layout)` : p.source,
        String(p.partition),
        String(p.files),
        count(p.rows),
        p.firstOffset ?? '–',
        p.lastOffset ?? '–',
        count(p.missingOffsets),
        count(p.deadLetteredOffsets),
        p.problems === 0 ? 'ok' : `${p.problems} problem${p.problems === 1 ? '' : 's'}`,
      ]),
    ];
    out.push(...table(rows, new Set([2, 3, 4, 5, 6, 7, 8])));
  }

  if (r.scores.mean !== null) {
    out.push('', 'Scores');
    const peak = Math.max(...r.scores.histogram.map((b) => b.rows));
    for (const b of r.scores.histogram) {
      const bar = '█'.repeat(peak === 0 ? 0 : Math.round((b.rows / peak) * 40));
      out.push(`  ${b.from.toFixed(1)}–${b.to.toFixed(1)}  ${count(b.rows).padStart(10)}  ${bar}`.trimEnd());
    }
  }

  if (r.tempFiles.length > 0) {
    out.push('', 'Temporary files (a writer at work, or stale after a crash; not read)');
    for (const t of r.tempFiles) out.push(`  ${t.path}  (${count(t.bytes)} bytes)`);
  }
  if (r.legacyFolders.length > 0) {
    out.push(
      '',
      'Old layout (pandas and Spark cannot read this folder as one dataset until these move; the next',
      '`textstream replay --resume` of the input, or the Kafka worker that owns the partition, moves them):',
    );
    for (const l of r.legacyFolders) out.push(`  ${l.folder}  →  ${l.movesTo}`);
  }
  if (r.warnings.length > 0) {
    out.push('', `Accepted gaps (--allow-gaps): ${r.warnings.length}`);
    out.push(...r.warnings.map(problemLine));
  }
  out.push('');
  if (r.problems.length === 0) out.push('Consistent: no gaps, overlaps or mismatches.');
  else {
    out.push(`Problems: ${r.problems.length}`);
    out.push(...r.problems.map(problemLine));
  }
  return `${out.join('\n')}\n`;
}

function problemLine(p: Problem): string {
  return `  ${p.kind.padEnd(16)}${p.message}`;
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** Left-aligned text columns, right-aligned number columns. */
function table(rows: string[][], numeric: Set<number>): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => `  ${r.map((cell, i) => (numeric.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd()}`);
}
