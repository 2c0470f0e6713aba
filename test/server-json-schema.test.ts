/** JSON-schema constrained decoding: the character automaton and the token mask (engine/json-schema*.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { advance, canEnd, compileSchema, initialState, mustEnd, ANY_OBJECT, type Schema } from '../src/engine/json-schema.ts';
import { allowedTokens, allowedTokensAsync, jsonConstraint } from '../src/engine/json-schema-mask.ts';
import type { TokenConstraint } from '../src/engine/scheduler.ts';
import { seededRandom } from '../src/engine/scheduler-sampling.ts';
import { fakeEngine, SPECIALS, VOCAB } from './server-fixtures.ts';
import { UsageError } from '../src/util/index.ts';

const accepts = (s: Schema, text: string) => {
  const st = advance(initialState(s), text);
  return st.length > 0 && canEnd(st);
};

test('the automaton accepts exactly the documents of the schema', () => {
  const s = compileSchema({
    type: 'object',
    properties: {
      a: { type: 'integer' },
      b: { type: ['string', 'null'] },
      c: { type: 'array', items: { enum: [1, 'x', true] }, minItems: 1, maxItems: 2 },
      d: { const: 'k' },
    },
    required: ['a'],
  });
  for (const ok of [
    '{"a":1}',
    '{ "a" : -12 , "b" : null }',
    '{"b":"h\\u00e9\\"","a":0}',
    '{"a":3,"c":[1,"x"]}',
    '{"a":3,"c":[true]}',
    '{"a":1,"d":"k"}',
  ]) {
    assert.ok(accepts(s, ok), ok);
    assert.ok(mustEnd(advance(initialState(s), ok)), ok);
  }
  for (const bad of [
    '{}',
    '{"a":1.5}',
    '{"a":01}',
    '{"a":1,"a":2}',
    '{"a":1,"e":2}',
    '{"a":1,"c":[]}',
    '{"a":1,"c":[1,1,1]}',
    '{"a":1,"c":[2]}',
    '{"a":1,"d":"kk"}',
    '{"a":1,}',
    '[1]',
    '{"b":"\n","a":1}',
  ]) {
    assert.ok(!accepts(s, bad), bad);
  }
  // integers stop at 16 digits (2^53 has 16: longer ones round in every float64 client); other numbers at 24
  assert.ok(accepts(s, `{"a":${'9'.repeat(16)}}`) && !accepts(s, `{"a":${'9'.repeat(17)}}`), 'integer digits');
  const n = compileSchema({ type: 'number' });
  assert.ok(accepts(n, '1'.repeat(20)) && accepts(n, `1.${'2'.repeat(23)}`) && !accepts(n, '1'.repeat(25)), 'number digits');
  // json_object: any object, nested values of any type.
  assert.ok(accepts(ANY_OBJECT, '{"x": [1, {"y": null}, "z", false, -0.5e3]}'));
  assert.ok(!accepts(ANY_OBJECT, '"just a string"'));
});

test('$ref with recursion, anyOf and length limits', () => {
  const s = compileSchema({
    $defs: {
      node: {
        type: 'object',
        properties: { v: { type: 'string', maxLength: 2 }, kids: { type: 'array', items: { $ref: '#/$defs/node' } } },
        required: ['v'],
      },
    },
    $ref: '#/$defs/node',
  });
  assert.ok(accepts(s, '{"v":"ab","kids":[{"v":"c","kids":[]},{"v":""}]}'));
  assert.ok(!accepts(s, '{"v":"abc"}'));
  assert.ok(!accepts(s, '{"v":"a","kids":[{"kids":[]}]}'));
  const any = compileSchema({ anyOf: [{ type: 'number' }, { type: 'object', properties: { q: { type: 'boolean' } }, required: ['q'] }] });
  assert.ok(accepts(any, '3.25'));
  assert.ok(accepts(any, '{"q":true}'));
  assert.ok(!accepts(any, '"3"'));
});

test('unsupported or broken schemas are one clear UsageError', () => {
  assert.throws(
    () => compileSchema({ type: 'object', patternProperties: {} }),
    (e: unknown) => e instanceof UsageError && /patternProperties/.test((e as Error).message),
  );
  assert.throws(() => compileSchema({ $ref: 'http://x/y' }), UsageError);
  assert.throws(() => compileSchema({ type: 'strange' }), /unknown type/);
  assert.throws(
    () => compileSchema({ type: 'object', properties: { a: {} }, required: ['b'], additionalProperties: false }),
    /required property 'b'/,
  );
  assert.throws(() => compileSchema({ type: 'string', minLength: 3, maxLength: 2 }), /maxLength < minLength/);
  // A library caller can hand over values JSON has no text for; they were matched as the text "undefined" and crashed
  // the automaton at the first token.
  assert.throws(
    () => compileSchema({ const: undefined }),
    (e: unknown) => e instanceof UsageError && /const must be a JSON value/.test(String(e)),
  );
  assert.throws(() => compileSchema({ enum: [1, () => 0] }), /#\/enum\/1: const must be a JSON value/);
  for (const bad of [Number.NaN, [1, Number.POSITIVE_INFINITY], { a: 2n }])
    assert.throws(
      () => compileSchema({ const: bad }),
      (e: unknown) => e instanceof UsageError && /const must be a JSON value/.test(String(e)),
    );
});

const vocab = { size: VOCAB.length, text: (id: number) => (id < SPECIALS.length ? null : (VOCAB[id] ?? null)) };

test('token mask: exactly the tokens whose whole text fits, end tokens only when complete', () => {
  const s = compileSchema({ type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false });
  const first = [...allowedTokens(vocab, initialState(s))].map((i) => VOCAB[i]).sort();
  // No whitespace before the value (llama.cpp's JSON grammar), one character at most between tokens.
  assert.deepEqual(first, ['{', '{"'].sort());
  const mid = [...allowedTokens(vocab, advance(initialState(s), '{"ok":'))].map((i) => VOCAB[i]).sort();
  assert.deepEqual(mid, ['\n', ' ', 'f', 'false', 't', 'true'].sort());
  const afterSpace = [...allowedTokens(vocab, advance(initialState(s), '{"ok": '))].map((i) => VOCAB[i]).sort();
  assert.deepEqual(afterSpace, ['f', 'false', 't', 'true'].sort());
  assert.equal(advance(initialState(s), '{ \n').length, 0, 'two whitespace characters in a row are refused');
  const c = jsonConstraint(vocab, [1], {
    type: 'object',
    properties: { ok: { type: 'boolean' } },
    required: ['ok'],
    additionalProperties: false,
  })();
  for (const t of ['{"', 'o', 'k', '":', 'true', '}']) {
    const row = new Float32Array(VOCAB.length);
    c.mask(row);
    const id = VOCAB.indexOf(t);
    assert.ok(row[id]! > -Infinity, `${t} allowed`);
    assert.equal(row[1], -Infinity, 'no end token before the object is complete');
    c.accept(id);
  }
  assert.ok(c.done);
});

test('random walks through the mask always yield valid documents', () => {
  const schemas = [
    {
      type: 'object',
      properties: {
        n: { type: 'number' },
        s: { type: 'string', maxLength: 4 },
        e: { enum: ['aa', 'ab', 'b'] },
        l: { type: 'array', items: { type: 'integer' }, maxItems: 3 },
      },
      required: ['n', 's', 'e', 'l'],
      additionalProperties: false,
    },
    { type: 'array', items: { type: 'boolean' }, minItems: 1, maxItems: 4 },
  ];
  const rand = seededRandom(42);
  let complete = 0;
  for (const schema of schemas) {
    const make = jsonConstraint(vocab, [1], schema);
    for (let run = 0; run < 40; run++) {
      const c = make();
      let text = '';
      for (let step = 0; step < 300 && !c.done; step++) {
        const row = new Float32Array(VOCAB.length).map(() => rand() * 4);
        c.mask(row);
        let best = -1;
        for (let i = 0; i < row.length; i++) if (row[i]! > -Infinity && (best < 0 || row[i]! > row[best]!)) best = i;
        assert.ok(best >= 0, `dead end after ${JSON.stringify(text)}`);
        if (best === 1) break;
        text += VOCAB[best];
        c.accept(best);
      }
      const v = JSON.parse(text) as unknown;
      complete++;
      if (Array.isArray(v)) assert.ok(v.length >= 1 && v.length <= 4 && v.every((x) => typeof x === 'boolean'));
      else {
        const o = v as Record<string, unknown>;
        assert.deepEqual(Object.keys(o).sort(), ['e', 'l', 'n', 's']);
        assert.equal(typeof o.n, 'number');
        assert.ok((o.s as string).length <= 4);
        assert.ok(['aa', 'ab', 'b'].includes(o.e as string));
        assert.ok((o.l as number[]).every((x) => Number.isInteger(x)));
      }
    }
  }
  assert.equal(complete, 80);
});

test('the free-string fast path allows exactly what running every token would', () => {
  for (const [schema, prefix] of [
    [ANY_OBJECT, '{"k": "v'],
    [ANY_OBJECT, '{"ke'],
    [compileSchema({ type: 'object', properties: { a: { type: 'string', minLength: 3 } } }), '{"a": "x'],
  ] as const) {
    const st = advance(initialState(schema), prefix);
    const fast = new Set(allowedTokens(vocab, st));
    const brute = new Set<number>();
    for (let id = 0; id < VOCAB.length; id++) {
      const t = vocab.text(id);
      if (t && advance(st, t).length > 0) brute.add(id);
    }
    assert.deepEqual(
      [...fast].sort((a, b) => a - b),
      [...brute].sort((a, b) => a - b),
      prefix,
    );
  }
});

test('masks computed in slices (allowedTokensAsync) equal the one-go masks and let timers run between slices', async () => {
  // A vocabulary of 20k random tokens and an object of 600 keys: the mask after '{"k' walks thousands of tokens.
  const rnd = seededRandom(11);
  const chars = 'abcdefghijklmnopqrstuvwxyz_0123456789"{}:, ';
  const texts: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    let t = '';
    for (let n = 1 + Math.floor(rnd() * 8); n > 0; n--) t += chars[Math.floor(rnd() * chars.length)];
    texts.push(t);
  }
  const big = { size: texts.length, text: (id: number) => texts[id]! };
  const props: Record<string, unknown> = {};
  for (let i = 0; i < 600; i++) props[`k${(i * 7919).toString(36)}_${i}`] = { type: 'integer' };
  const s = compileSchema({ type: 'object', properties: props });
  for (const prefix of ['{', '{"', '{"k', '{"k0_0": 1']) {
    const st = advance(initialState(s), prefix);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    // sliceMs 0: a pause after every 256 automaton steps, so the timer must get its turns.
    const sliced = await allowedTokensAsync(big, st, 0);
    clearInterval(timer);
    assert.deepEqual([...sliced], [...allowedTokens(big, st)], prefix);
    if (prefix === '{"k') assert.ok(ticks > 0, 'the event loop ran between slices');
  }
});

test('the scheduler prepares a constraint beside the forward pass, and mask() then uses what prepare computed', async () => {
  const engine = fakeEngine();
  const events: string[] = [];
  const vocabOf = { size: VOCAB.length, text: (id: number) => (id < SPECIALS.length ? null : VOCAB[id]!) };
  const inner = jsonConstraint(vocabOf, [1], { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] });
  const spy = (): TokenConstraint => {
    const c = inner();
    return {
      prepare() {
        events.push('prepare');
        return c.prepare?.();
      },
      mask(logits) {
        events.push('mask');
        c.mask(logits);
      },
      accept: (t) => c.accept(t),
      get done() {
        return c.done;
      },
    };
  };
  const r = await engine.scheduler.submit({ prompt: [0, 5, 6], maxTokens: 12, constraint: spy, sampling: { temperature: 0 } });
  assert.ok(r.choices[0]!.completionTokens > 0);
  // Every mask() is preceded by its step's prepare().
  for (let i = 0; i < events.length; i++) if (events[i] === 'mask') assert.equal(events[i - 1], 'prepare', events.join(','));
});
