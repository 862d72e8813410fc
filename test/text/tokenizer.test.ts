import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fixturesDir } from '../helpers/paths.js';
import { TokenizerError } from '../../src/errors.js';
import { Tokenizer } from '../../src/text/tokenizer.js';
import { padSequences, type PadMode } from '../../src/text/pad.js';
import type { TokenizerOptions } from '../../src/text/tokenizer-config.js';

/** The shape scripts/keras_tokenizer_golden.py writes. */
interface Golden {
  tfKerasVersion: string;
  edgeCount: number;
  texts: string[];
  configs: {
    name: string;
    tokenizer: { num_words?: number; oov_token?: string; filters?: string; split?: string; lower?: boolean };
    fit: number;
    sequences: number[][];
    pads: { maxlen: number; padding: PadMode; truncating: PadMode; padded: number[][] }[];
    wordIndexSize: number;
    wordIndexHead: [string, number][];
    toJson?: string;
  }[];
}

const golden = JSON.parse(readFileSync(path.join(fixturesDir, 'keras-tokenizer-golden.json'), 'utf8')) as Golden;

function optionsOf(kwargs: Golden['configs'][number]['tokenizer']): TokenizerOptions {
  return {
    numWords: kwargs.num_words ?? null,
    oovToken: kwargs.oov_token ?? null,
    ...(kwargs.filters === undefined ? {} : { filters: kwargs.filters }),
    ...(kwargs.split === undefined ? {} : { split: kwargs.split }),
    ...(kwargs.lower === undefined ? {} : { lower: kwargs.lower }),
  };
}

/** Compares text by text, so a failure names the first text that differs. */
function assertSequences(actual: ArrayLike<number>[], expected: number[][], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: number of sequences`);
  expected.forEach((exp, i) => {
    assert.deepEqual(Array.from(actual[i]!), exp, `${what}: text #${i} ${JSON.stringify(golden.texts[i]!.slice(0, 60))}`);
  });
}

function fitted(config: Golden['configs'][number], extra: TokenizerOptions = {}): Tokenizer {
  return new Tokenizer({ ...optionsOf(config.tokenizer), ...extra }).fitOnTexts(golden.texts.slice(0, config.fit));
}

// ---- Keras golden outputs (tf_keras Tokenizer + pad_sequences, see the script) ----

test('should use a golden fixture that covers every path of the tokenizer', () => {
  assert.match(golden.tfKerasVersion, /^2\.21\./);
  assert.ok(golden.texts.length >= 300);
  const names = golden.configs.map((c) => c.name);
  for (const name of ['num_words_10000', 'num_words_50_oov', 'no_limit_oov_is_a_word', 'lines_no_lower', 'multichar_split']) {
    assert.ok(names.includes(name), name);
  }
});

for (const config of golden.configs) {
  test(`should produce Keras' sequences and word index token for token (${config.name})`, () => {
    const tokenizer = fitted(config);
    assertSequences(tokenizer.textsToSequences(golden.texts), config.sequences, config.name);
    assert.equal(tokenizer.wordIndex.size, config.wordIndexSize);
    assert.deepEqual([...tokenizer.wordIndex].slice(0, config.wordIndexHead.length), config.wordIndexHead);
  });

  for (const pad of config.pads) {
    const label = `${config.name}, maxlen ${pad.maxlen} ${pad.padding}/${pad.truncating}`;
    test(`should pad like pad_sequences, via padSequences and encode (${label})`, () => {
      const opts = { padding: pad.padding, truncating: pad.truncating };
      assertSequences(padSequences(config.sequences, pad.maxlen, opts), pad.padded, `padSequences ${label}`);
      const tokenizer = fitted(config, { maxLen: pad.maxlen, ...opts }).freeze();
      const encoded = golden.texts.map((t) => tokenizer.encode(t));
      for (const row of encoded) assert.ok(row instanceof Int32Array && row.length === pad.maxlen);
      assertSequences(encoded, pad.padded, `encode ${label}`);
    });
  }

  if (config.toJson !== undefined) {
    const kerasJson = config.toJson;
    test(`should load Keras' to_json() and produce identical sequences (${config.name})`, () => {
      const loaded = Tokenizer.fromKerasJSON(kerasJson);
      assert.equal(loaded.frozen, true);
      assert.equal(loaded.config.numWords, config.tokenizer.num_words ?? null);
      assert.equal(loaded.config.oovToken, config.tokenizer.oov_token ?? null);
      assertSequences(loaded.textsToSequences(golden.texts), config.sequences, `${config.name} from Keras JSON`);
      const pad = config.pads[0]!;
      const padded = Tokenizer.fromKerasJSON(kerasJson, { maxLen: pad.maxlen, padding: pad.padding, truncating: pad.truncating });
      assertSequences(golden.texts.map((t) => padded.encode(t)), pad.padded, `${config.name} from Keras JSON, encoded`);
      // Word counts keep Keras' first-seen order, numeric words ("2002") included.
      const own = fitted(config);
      assert.deepEqual([...loaded.wordCounts], [...own.wordCounts]);
      assert.deepEqual([...loaded.wordIndex], [...own.wordIndex]);
      assert.equal(loaded.documentCount, config.fit);
    });

    test(`should round-trip a Keras-loaded tokenizer through our JSON (${config.name})`, () => {
      const loaded = Tokenizer.fromKerasJSON(kerasJson);
      const again = Tokenizer.fromJSON(JSON.stringify(loaded));
      assert.deepEqual(again.toJSON(), loaded.toJSON());
      assertSequences(again.textsToSequences(golden.texts), config.sequences, `${config.name} re-loaded`);
    });
  }
}

// ---- our JSON format ----

test('should round-trip a frozen tokenizer through toJSON/fromJSON with identical ids', () => {
  const config = golden.configs.find((c) => c.name === 'num_words_50_oov')!;
  const original = fitted(config, { maxLen: 20, padding: 'post' }).freeze();
  const text = JSON.stringify(original);
  const json = JSON.parse(text) as Record<string, unknown>;
  assert.equal(json.format, 'textstream-tokenizer');
  assert.equal(json.version, 1);
  assert.deepEqual(json.config, {
    numWords: 50,
    filters: '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n',
    lower: true,
    split: ' ',
    oovToken: '<OOV>',
    maxLen: 20,
    padding: 'post',
    truncating: 'pre',
  });
  for (const restored of [Tokenizer.fromJSON(text), Tokenizer.fromJSON(original.toJSON())]) {
    assert.equal(restored.frozen, true);
    assert.deepEqual(restored.config, original.config);
    assert.deepEqual([...restored.wordIndex], [...original.wordIndex]);
    assertSequences(restored.textsToSequences(golden.texts), config.sequences, 'restored');
    assert.deepEqual(restored.encode(golden.texts[20]!), original.encode(golden.texts[20]!));
  }
});

test('should resume fitting an unfrozen tokenizer restored from JSON exactly where it stopped', () => {
  const texts = golden.texts.slice(0, 60);
  const straight = new Tokenizer({ numWords: 1000 }).fitOnTexts(texts);
  const first = new Tokenizer({ numWords: 1000 }).fitOnTexts(texts.slice(0, 25));
  const resumed = Tokenizer.fromJSON(JSON.stringify(first)).fitOnTexts(texts.slice(25));
  assert.equal(resumed.frozen, false);
  assert.equal(resumed.documentCount, 60);
  assert.deepEqual([...resumed.wordCounts], [...straight.wordCounts]);
  assert.deepEqual([...resumed.wordIndex], [...straight.wordIndex]);
});

// ---- freezing ----

test('should refuse to fit once frozen, and keep every id unchanged', () => {
  const tokenizer = new Tokenizer({ numWords: 100, oovToken: '<OOV>' }).fitOnTexts(['a b b c c c']);
  const before = tokenizer.textToSequence('c b a z');
  assert.deepEqual(before, [2, 3, 4, 1]);
  assert.equal(tokenizer.freeze(), tokenizer);
  assert.equal(tokenizer.freeze().frozen, true, 'freeze is idempotent');
  assert.throws(
    () => tokenizer.fitOnTexts(['z z z z z']),
    (e: unknown) => e instanceof TokenizerError && e.code === 'TOKENIZER_INVALID' && /frozen/.test(e.message),
  );
  assert.deepEqual(tokenizer.textToSequence('c b a z'), before);
  assert.equal(tokenizer.documentCount, 1);
  assert.equal(tokenizer.wordCounts.get('z'), undefined);
});

test('should load a Keras tokenizer frozen', () => {
  const loaded = Tokenizer.fromKerasJSON(golden.configs[0]!.toJson!);
  assert.throws(() => loaded.fitOnTexts(['more']), TokenizerError);
});

test('should let fitting continue across calls before freezing, like repeated fit_on_texts', () => {
  const once = new Tokenizer().fitOnTexts(['x y', 'y z z']);
  const twice = new Tokenizer().fitOnTexts(['x y']).fitOnTexts(['y z z']);
  assert.deepEqual([...twice.wordIndex], [...once.wordIndex]);
  // Counts: z 2, y 2, x 1; the tie keeps first-seen order (y before z).
  assert.deepEqual([...once.wordIndex], [['y', 1], ['z', 2], ['x', 3]]);
});

// ---- Keras semantics on small inputs ----

test('should give empty and all-filtered texts no ids and an all-padding encoding', () => {
  const tokenizer = new Tokenizer({ maxLen: 5 }).fitOnTexts(['hello world']).freeze();
  for (const text of ['', '   ', '!!! ... ,,, ---', '\t\n']) {
    assert.deepEqual(tokenizer.textToSequence(text), []);
    assert.deepEqual(Array.from(tokenizer.encode(text)), [0, 0, 0, 0, 0]);
  }
  const oov = new Tokenizer({ maxLen: 3, oovToken: '<OOV>' }).fitOnTexts(['']).freeze();
  assert.deepEqual([...oov.wordIndex], [['<OOV>', 1]]);
  assert.deepEqual(Array.from(oov.encode('unknown words')), [0, 1, 1]);
});

test('should truncate and pad to maxLen at the configured ends', () => {
  const words = 'a b c d e f g';
  const fit = (padding: PadMode, truncating: PadMode): Tokenizer =>
    new Tokenizer({ maxLen: 4, padding, truncating }).fitOnTexts([words]).freeze();
  // Every word occurs once, so ids follow first-seen order: a=1 ... g=7.
  assert.deepEqual(Array.from(fit('pre', 'pre').encode(words)), [4, 5, 6, 7]);
  assert.deepEqual(Array.from(fit('pre', 'post').encode(words)), [1, 2, 3, 4]);
  assert.deepEqual(Array.from(fit('post', 'pre').encode('a b')), [1, 2, 0, 0]);
  assert.deepEqual(Array.from(fit('pre', 'pre').encode('a b')), [0, 0, 1, 2]);
  assert.deepEqual(Array.from(fit('pre', 'pre').encode('a b c d')), [1, 2, 3, 4]);
});

test('should drop words at or beyond numWords, or map them to the OOV id', () => {
  const texts = ['a a a a b b b c c d'];
  const plain = new Tokenizer({ numWords: 3 }).fitOnTexts(texts);
  assert.deepEqual(plain.textToSequence('a b c d unknown'), [1, 2]);
  const withOov = new Tokenizer({ numWords: 3, oovToken: '<OOV>' }).fitOnTexts(texts);
  // <OOV>=1, a=2, b=3 (cut: >= 3), c=4, d=5.
  assert.deepEqual(withOov.textToSequence('a b c d unknown'), [2, 1, 1, 1, 1]);
  assert.equal(withOov.wordIndex.get('d'), 5, 'the word index itself keeps every word');
});

test('should write into a caller-provided buffer and reject one of the wrong length', () => {
  const tokenizer = new Tokenizer({ maxLen: 3 }).fitOnTexts(['x y z']).freeze();
  const out = new Int32Array(3).fill(-1);
  assert.equal(tokenizer.encode('z', out), out);
  assert.deepEqual(Array.from(out), [0, 0, 3]);
  assert.throws(() => tokenizer.encode('z', new Int32Array(4)), TokenizerError);
});

test('should reject invalid options naming the option', () => {
  const cases: [TokenizerOptions, RegExp][] = [
    [{ numWords: 0 }, /tokenizer\.numWords/],
    [{ numWords: 2.5 }, /tokenizer\.numWords/],
    [{ split: '' }, /tokenizer\.split/],
    [{ maxLen: 0 }, /tokenizer\.maxLen/],
    [{ padding: 'middle' as PadMode }, /tokenizer\.padding/],
    [{ truncating: 'x' as PadMode }, /tokenizer\.truncating/],
    [{ oovToken: 7 as unknown as string }, /tokenizer\.oovToken/],
    [{ lower: 'yes' as unknown as boolean }, /tokenizer\.lower/],
    [{ maxlen: 100 } as unknown as TokenizerOptions, /tokenizer\.maxlen is not a tokenizer option/],
  ];
  for (const [options, message] of cases) assert.throws(() => new Tokenizer(options), message, JSON.stringify(options));
  assert.throws(() => new Tokenizer().fitOnTexts([42 as unknown as string]), TokenizerError);
  // Keras would fit on the characters of a lone string; that is never what was meant.
  assert.throws(() => new Tokenizer().fitOnTexts('one text'), /single string/);
  assert.throws(() => new Tokenizer().textsToSequences('one text'), /single string/);
});

// ---- malformed saved tokenizers ----

type Json = Record<string, unknown>;
const kerasTop = (): Json => JSON.parse(golden.configs[1]!.toJson!) as Json;
const withKerasConfig = (patch: (config: Json) => void): string => {
  const top = kerasTop();
  patch(top.config as Json);
  return JSON.stringify(top);
};

test('should reject malformed Keras JSON with a TokenizerError naming the field', () => {
  const cases: [string, string, RegExp][] = [
    ['not JSON', '{"class_name": "Tokenizer", ', /not valid JSON/],
    ['an array', '[]', /\(top level\) must be an object/],
    ['another class', JSON.stringify({ ...kerasTop(), class_name: 'TextVectorization' }), /class_name/],
    ['no config', JSON.stringify({ class_name: 'Tokenizer' }), /config must be an object/],
    ['word_index missing', withKerasConfig((c) => delete c.word_index), /config\.word_index must be a JSON-encoded object/],
    ['word_index decoded', withKerasConfig((c) => (c.word_index = { a: 1 })), /config\.word_index must be a JSON-encoded object/],
    ['word_index not an object', withKerasConfig((c) => (c.word_index = '[1, 2]')), /config\.word_index must hold a JSON object/],
    ['word_index broken', withKerasConfig((c) => (c.word_index = '{"a": 1')), /config\.word_index must hold a JSON object/],
    ['word_index id 0', withKerasConfig((c) => (c.word_index = '{"a": 0}')), /config\.word_index\["a"\] must be a positive integer/],
    ['word_index id text', withKerasConfig((c) => (c.word_index = '{"a": "1"}')), /config\.word_index\["a"\]/],
    ['word_counts negative', withKerasConfig((c) => (c.word_counts = '{"a": -1}')), /config\.word_counts\["a"\]/],
    ['word_docs missing', withKerasConfig((c) => delete c.word_docs), /config\.word_docs/],
    ['index_word not JSON', withKerasConfig((c) => (c.index_word = 'nope')), /config\.index_word/],
    ['num_words negative', withKerasConfig((c) => (c.num_words = -5)), /config\.num_words/],
    ['num_words text', withKerasConfig((c) => (c.num_words = '100')), /config\.num_words/],
    ['char_level', withKerasConfig((c) => (c.char_level = true)), /config\.char_level/],
    ['oov_token number', withKerasConfig((c) => (c.oov_token = 3)), /config\.oov_token must be a string/],
    ['filters null', withKerasConfig((c) => (c.filters = null)), /config\.filters must be a string/],
    ['lower text', withKerasConfig((c) => (c.lower = 'true')), /config\.lower must be a boolean/],
    ['split empty', withKerasConfig((c) => (c.split = '')), /config\.split must be a non-empty string/],
    ['unknown argument', withKerasConfig((c) => (c.analyzer = 'x')), /config\.analyzer is not a Keras Tokenizer argument/],
    ['document_count', withKerasConfig((c) => (c.document_count = 1.5)), /config\.document_count/],
  ];
  for (const [what, json, message] of cases) {
    assert.throws(
      () => Tokenizer.fromKerasJSON(json),
      (e: unknown) => e instanceof TokenizerError && message.test(e.message),
      what,
    );
  }
  assert.throws(() => Tokenizer.fromKerasJSON(golden.configs[1]!.toJson!, { maxLen: -1 }), /maxLen/);
});

test('should treat Keras num_words 0 as no limit, as Keras does', () => {
  const loaded = Tokenizer.fromKerasJSON(withKerasConfig((c) => (c.num_words = 0)));
  assert.equal(loaded.config.numWords, null);
});

test('should reject malformed JSON of our format with a TokenizerError naming the field', () => {
  const good = (): Json => new Tokenizer({ numWords: 10 }).fitOnTexts(['a b c']).toJSON() as unknown as Json;
  const patched = (patch: (j: Json) => void): Json => {
    const j = good();
    patch(j);
    return j;
  };
  const cases: [string, unknown, RegExp][] = [
    ['not JSON', '{"format": ', /not valid JSON/],
    ['null', null, /\(top level\) must be an object/],
    ['other format', patched((j) => (j.format = 'keras')), /format must be "textstream-tokenizer"/],
    ['newer version', patched((j) => (j.version = 2)), /version must be 1/],
    ['config missing', patched((j) => delete j.config), /config must be an object/],
    ['numWords missing', patched((j) => delete (j.config as Json).numWords), /config\.numWords is missing/],
    ['numWords bad', patched((j) => ((j.config as Json).numWords = -1)), /config\.numWords/],
    ['unknown option', patched((j) => ((j.config as Json).stem = true)), /config\.stem is not a tokenizer option/],
    ['frozen missing', patched((j) => delete j.frozen), /frozen must be a boolean/],
    ['documentCount', patched((j) => (j.documentCount = -1)), /documentCount/],
    ['wordIndex object', patched((j) => (j.wordIndex = { a: 1 })), /wordIndex must be an array/],
    ['wordIndex pair', patched((j) => (j.wordIndex = [['a', 1], ['b']])), /wordIndex\[1\] must be a \[word, number\] pair/],
    ['wordIndex id 0', patched((j) => (j.wordIndex = [['a', 0]])), /wordIndex\[0\]\[1\] must be a positive integer/],
    ['wordIndex dup', patched((j) => (j.wordIndex = [['a', 1], ['a', 2]])), /wordIndex\[1\]\[0\] is a duplicate word/],
    ['wordCounts count', patched((j) => (j.wordCounts = [['a', 'many']])), /wordCounts\[0\]\[1\]/],
  ];
  for (const [what, json, message] of cases) {
    assert.throws(
      () => Tokenizer.fromJSON(json as string),
      (e: unknown) => e instanceof TokenizerError && message.test(e.message),
      what,
    );
  }
});
