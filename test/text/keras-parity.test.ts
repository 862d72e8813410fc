/**
 * Proves the golden fixture is Keras' own output: re-runs scripts/keras_tokenizer_golden.py
 * with the project venv (tf_keras 2.21) and compares with the committed file. Also checks
 * `pythonLower` against Python's `str.lower()` for every code point, since Keras
 * lower-cases with Python and the fixture can only sample Unicode.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fixturesDir, repoRoot } from '../helpers/paths.js';
import { pythonLower } from '../../src/text/lowercase.js';

const run = promisify(execFile);

// Creating the venv downloads TensorFlow when it is missing (CI creates it beforehand).
const VENV_TIMEOUT_MS = 20 * 60_000;
const SCRIPT_TIMEOUT_MS = 5 * 60_000;

async function venvPython(): Promise<string> {
  const { stdout } = await run('bash', [path.join(repoRoot, 'scripts', 'python-env.sh')], {
    timeout: VENV_TIMEOUT_MS,
    maxBuffer: 16 << 20,
  });
  return stdout.trim();
}

test('should regenerate the committed golden fixture byte for byte with Keras', { timeout: VENV_TIMEOUT_MS + SCRIPT_TIMEOUT_MS }, async (t) => {
  const python = await venvPython();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'textstream-keras-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'golden.json');
  await run(python, [path.join(repoRoot, 'scripts', 'keras_tokenizer_golden.py'), '--out', out], {
    timeout: SCRIPT_TIMEOUT_MS,
    maxBuffer: 16 << 20,
  });
  const fresh = readFileSync(out, 'utf8');
  const committed = readFileSync(path.join(fixturesDir, 'keras-tokenizer-golden.json'), 'utf8');
  if (fresh !== committed) {
    // Say which part moved before failing; a whole-file diff of 2.6 MB helps nobody.
    const a = JSON.parse(fresh) as Record<string, unknown>;
    const b = JSON.parse(committed) as Record<string, unknown>;
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      assert.deepEqual(a[key], b[key], `fixture field "${key}" differs from what Keras writes now; rerun the script`);
    }
  }
  assert.ok(fresh === committed, 'fixture bytes differ from what Keras writes now; rerun the script');
});

test("should lower-case every code point exactly like the venv's Python str.lower()", { timeout: VENV_TIMEOUT_MS }, async () => {
  const python = await venvPython();
  // Final sigma depends on context; the rest is per code point.
  const contexts = ['ΑΣ', 'ΑΣ Α', 'Σ', 'ΑΣ.', "ΑΣ'Α", 'ΑΣΑ', 'Α\u0301Σ', 'ΑΣ\u0301', '1Σ', 'ΑΣ1', 'A\u00adΣ', 'ǅΣ', 'ΑΣ𐵐', '𐵐Σ', 'İİ'];
  const code = [
    'import json, sys',
    'table = {}',
    'for c in range(0x110000):',
    '    if 0xD800 <= c <= 0xDFFF: continue',
    '    l = chr(c).lower()',
    '    if l != chr(c): table[c] = l',
    'contexts = json.loads(sys.argv[1])',
    'json.dump({"table": table, "contexts": [s.lower() for s in contexts]}, sys.stdout)',
  ].join('\n');
  const { stdout } = await run(python, ['-c', code, JSON.stringify(contexts)], { maxBuffer: 64 << 20 });
  const expected = JSON.parse(stdout) as { table: Record<string, string>; contexts: string[] };
  const mismatches: string[] = [];
  for (let c = 0; c < 0x110000; c++) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    const ch = String.fromCodePoint(c);
    const want = expected.table[c] ?? ch;
    if (pythonLower(ch) !== want) mismatches.push(`U+${c.toString(16).toUpperCase()}`);
  }
  assert.deepEqual(mismatches, [], 'code points whose pythonLower differs from Python');
  assert.deepEqual(contexts.map(pythonLower), expected.contexts);
});
