/**
 * engine/token-constraints.ts on the fake vocabulary: the lazy tool-call constraint leaves prose free, keeps whitespace
 * and special tokens undecided, and once the output opens with `{` allows only a call to a declared tool; the logit
 * bias adds, bans with -Infinity, and keeps the inner constraint's mask.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonConstraint } from '../src/engine/json-schema-mask.ts';
import { biasedConstraint, lazyToolCallConstraint } from '../src/engine/token-constraints.ts';
import { toolCallSchema } from '../src/server/util.ts';
import { SPECIALS, VOCAB } from './server-fixtures.ts';

const vocab = { size: VOCAB.length, text: (id: number) => (id < SPECIALS.length ? null : (VOCAB[id] ?? null)) };
const id = (t: string) => VOCAB.indexOf(t);
const callSchema = toolCallSchema(
  [{ name: 'lookup', parameters: { type: 'object', properties: {}, additionalProperties: false } }],
  () => true,
);
const lazy = () => lazyToolCallConstraint(vocab, jsonConstraint(vocab, [1], callSchema)());
const allowed = (c: { mask(l: Float32Array): void }) => {
  const row = new Float32Array(VOCAB.length);
  c.mask(row);
  return new Set(VOCAB.filter((_, i) => row[i]! > -Infinity));
};

test('lazy tool call: undecided output may start with prose or a brace; leading whitespace and specials keep it undecided', () => {
  const c = lazy();
  const first = allowed(c);
  assert.ok(first.has('H') && first.has('Hello') && first.has(' ') && first.has('{') && first.has('{"'), 'prose and call openings');
  c.accept(id(' '));
  c.accept(0);
  assert.ok(allowed(c).has('{'), 'still undecided after whitespace and a special token');
  c.accept(id('H'));
  assert.equal(allowed(c).size, VOCAB.length, 'prose: nothing masked');
  assert.equal(c.done, false);
});

test('lazy tool call: after `{` only the declared call can be written, and it ends the output', () => {
  const c = lazy();
  let text = '';
  for (let step = 0; step < 200 && !c.done; step++) {
    const ok = [...allowed(c)].filter((t) => t !== '\n' && t !== ' ');
    // Deterministic walk: the first allowed token in vocabulary order.
    const t = step === 0 ? '{"' : ok[0]!;
    assert.ok(allowed(c).has(t), `${JSON.stringify(t)} allowed after ${JSON.stringify(text)}`);
    text += t;
    c.accept(id(t));
  }
  assert.ok(c.done, text);
  assert.deepEqual(JSON.parse(text), { name: 'lookup', parameters: {} });
});

test('logit bias: added to the row, -Infinity bans, the inner mask still applies', () => {
  const row = new Float32Array(VOCAB.length).fill(1);
  biasedConstraint(
    new Map([
      [id('Z'), 2.5],
      [id('H'), -Infinity],
    ]),
    null,
  ).mask(row);
  assert.equal(row[id('Z')], 3.5);
  assert.equal(row[id('H')], -Infinity);
  assert.equal(row[id('A')], 1);
  const c = biasedConstraint(new Map([[id('{"'), 4]]), jsonConstraint(vocab, [1], { type: 'object' })());
  const r2 = new Float32Array(VOCAB.length).fill(1);
  c.mask(r2);
  assert.equal(r2[id('{"')], 5, 'bias kept through the JSON mask');
  assert.equal(r2[id('Z')], -Infinity, 'JSON mask applied');
});
