/**
 * Digests of the cleaned text of every bundled corpus message, by `cleanEmail` and by
 * `cleanText` (the whole raw message as plain text), for test/text/clean-golden.test.ts.
 * Faster cleaning must not change a single output; the digests pin them.
 *
 * test/text/fixtures/clean-golden.json was made from commit 7833c92 (the last commit
 * before the clean stage was made faster), built on its own and loaded with --impl:
 *
 *   git archive 7833c92 | tar -x -C /tmp/base && (cd /tmp/base && ln -s <repo>/node_modules && npx tsc -p .)
 *   node dist/bench/clean-golden.js --impl /tmp/base/dist/src/text/clean.js > test/text/fixtures/clean-golden.json
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command, Option } from 'commander';
import { corpusFiles, readCorpusText } from './corpus-files.js';
import { parseOrExit } from './options.js';

interface CleanModule {
  cleanEmail: (raw: string | Uint8Array) => Promise<string>;
  cleanText: (text: string) => string;
}

/** The first 12 hex digits of the text's SHA-256: enough to tell any change, short enough to diff. */
export function textDigest(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 12);
}

/**
 * `{ "<group>/<number>": ["<cleanEmail digest>", "<cleanText digest>"] }`, in file order
 * (a file is `<number>.<hash>.json`; the number is unique within its group).
 */
export async function cleanDigests(clean: CleanModule): Promise<Record<string, [string, string]>> {
  const out: Record<string, [string, string]> = {};
  for (const file of corpusFiles()) {
    const raw = readCorpusText(file);
    out[file.slice(0, file.indexOf('.'))] = [textDigest(await clean.cleanEmail(raw)), textDigest(clean.cleanText(raw))];
  }
  return out;
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const program = new Command('node dist/bench/clean-golden.js')
    .description('digests of cleanEmail and cleanText over every bundled corpus message, as JSON on stdout')
    .addOption(new Option('--impl <file>', 'a compiled clean.js to clean with (default: this build)'))
    .exitOverride();
  parseOrExit(program);
  const { impl } = program.opts<{ impl?: string }>();
  const implFile = path.resolve(impl ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '../src/text/clean.js'));
  const clean = (await import(pathToFileURL(implFile).href)) as CleanModule;
  process.stdout.write(`${JSON.stringify(await cleanDigests(clean), null, 0).replaceAll('],"', '],\n"')}\n`);
}
