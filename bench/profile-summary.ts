/**
 * Self time of a V8 CPU profile (`node --cpu-prof`), summed by where the code lives (an
 * npm package, a project file, a Node internal module, or V8's own entries such as the
 * garbage collector) and by function. How docs/performance.md's clean-stage split is made:
 *
 *   node --cpu-prof --cpu-prof-dir=out/prof dist/bench/clean.js --reps 3
 *   node dist/bench/profile-summary.js out/prof/<file>.cpuprofile [--top 25]
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { parseOrExit, positiveInteger } from './options.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const program = new Command('node dist/bench/profile-summary.js')
  .argument('<profile>', 'a .cpuprofile file')
  .option('--top <n>', 'functions to list', positiveInteger, 25)
  .exitOverride();
parseOrExit(program);
const [file] = program.args as [string];
const { top } = program.opts<{ top: number }>();

const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));

/** Where a frame's code lives: `pkg:<name>`, `src/…`, `node:<module>`, or V8's own entry. */
function placeOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg !== null) return `pkg:${pkg[1]}`;
  if (url.startsWith('node:')) return url;
  const project = /\/dist\/((?:src|bench)\/.*)$/.exec(url);
  return project !== null ? project[1]! : url;
}

const byPlace = new Map<string, number>();
const byFunction = new Map<string, number>();
let total = 0;
// Each sample is charged the time until the next one: the sampled frame's self time.
for (let i = 0; i < profile.samples.length; i++) {
  const node = byId.get(profile.samples[i]!);
  const dt = profile.timeDeltas[i + 1] ?? 0;
  if (node === undefined) continue;
  const { functionName, url, lineNumber } = node.callFrame;
  const place = placeOf(url, functionName);
  const fn = `${functionName || '(anonymous)'} ${place}${url === '' ? '' : `:${lineNumber + 1}`}`;
  byPlace.set(place, (byPlace.get(place) ?? 0) + dt);
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + dt);
  total += dt;
}

function table(title: string, entries: Map<string, number>, limit: number): string {
  const rows = [...entries].sort((a, b) => b[1] - a[1]).slice(0, limit);
  const lines = rows.map(([k, us]) => `| ${k} | ${(us / 1000).toFixed(0)} | ${((100 * us) / total).toFixed(1)} |`);
  return [`| ${title} | self ms | % |`, '|---|---:|---:|', ...lines].join('\n');
}

process.stdout.write(`total sampled: ${(total / 1000).toFixed(0)} ms\n\n`);
process.stdout.write(`${table('where', byPlace, 40)}\n\n${table('function', byFunction, top)}\n`);
