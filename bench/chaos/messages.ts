/**
 * The chaos run's stream: short labelled texts a model can learn (spam words vs. ham
 * words, with shared noise), and one malformed JSON value in every `poisonEvery`, which
 * the workers must dead-letter. Deterministic for a seed.
 */
import { mulberry32 } from '../../src/random.js';

const SPAM = ['free', 'money', 'offer', 'click', 'win', 'prize', 'cash', 'winner', 'urgent', 'deal'];
const HAM = ['meeting', 'agenda', 'lunch', 'report', 'team', 'project', 'review', 'schedule', 'notes', 'draft'];
const NOISE = ['the', 'a', 'to', 'of', 'and', 'in', 'for', 'on', 'with', 'at', 'this', 'that', 'you', 'we'];

export interface ChaosMessage {
  key: string;
  value: string;
}

export function* chaosMessages(count: number, seed: number, poisonEvery: number): Generator<ChaosMessage> {
  const random = mulberry32(seed);
  const pick = (words: readonly string[]): string => words[Math.floor(random() * words.length)]!;
  for (let i = 0; i < count; i++) {
    const key = `m${i}`;
    if (poisonEvery > 0 && i % poisonEvery === poisonEvery - 1) {
      yield { key, value: `{"id": "${key}", "text": ` };
      continue;
    }
    const label = random() < 0.35 ? 1 : 0;
    const words = Array.from({ length: 8 + Math.floor(random() * 12) }, () =>
      random() < 0.4 ? pick(NOISE) : pick(label === 1 ? (random() < 0.85 ? SPAM : HAM) : random() < 0.85 ? HAM : SPAM),
    );
    yield { key, value: JSON.stringify({ id: key, text: words.join(' '), label }) };
  }
}
