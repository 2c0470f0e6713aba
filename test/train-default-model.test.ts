// The shipped default model (models/default): Llama 4 architecture within 20 MB, standard HF files, and — through
// the engine's own loader, tokenizer loader and the shipped chat template — it answers arithmetic questions in the
// chat format and stops on <|eot|>.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Template } from '@huggingface/jinja';
import { loadModel } from '../src/load.ts';
import { loadTokenizer } from '../src/tokenizer/index.ts';

const DIR = resolve(process.cwd(), 'models/default');

test('models/default is a small Llama 4 (MoE, chunked + NoPE layers) in the HF layout', (t) => {
  if (!existsSync(DIR)) {
    t.skip('models/default missing');
    return;
  }
  const total = readdirSync(DIR).reduce((a, f) => a + statSync(join(DIR, f)).size, 0);
  assert.ok(total <= 20 * 1024 * 1024, `models/default is ${total} bytes`);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json'])
    assert.ok(existsSync(join(DIR, f)), f);
  const cfg = JSON.parse(readFileSync(join(DIR, 'config.json'), 'utf8'));
  assert.equal(cfg.model_type, 'llama4_text');
  assert.ok(cfg.moe_layers.length > 0 && cfg.num_local_experts > 1, 'MoE layers');
  assert.ok(cfg.no_rope_layers.includes(0) && cfg.no_rope_layers.includes(1), 'NoPE and RoPE (chunked) layers');
  const tc = JSON.parse(readFileSync(join(DIR, 'tokenizer_config.json'), 'utf8'));
  assert.equal(typeof tc.chat_template, 'string');
});

test('the engine answers "What is A plus B?" from models/default in the chat format', async (t) => {
  if (!existsSync(DIR)) {
    t.skip('models/default missing');
    return;
  }
  const { model } = await loadModel(DIR, { backend: 'typescript' });
  const tok = loadTokenizer(DIR);
  const tpl = new Template(JSON.parse(readFileSync(join(DIR, 'tokenizer_config.json'), 'utf8')).chat_template);
  const eot = tok.specialTokens.get('<|eot|>')!;
  assert.ok(model.info.eosTokenIds.includes(eot), 'generation stops on <|eot|>');
  const ask = (q: string, maxTokens = 24): string => {
    const prompt = tpl.render({ messages: [{ role: 'user', content: q }], add_generation_prompt: true, bos_token: '<|begin_of_text|>' });
    const seq = model.newSequence();
    let [logits] = model.forward([{ seq, tokens: tok.encode(prompt, { allowSpecial: true }), logits: 'last' }]);
    const out: number[] = [];
    for (let i = 0; i < maxTokens; i++) {
      let best = 0;
      for (let j = 1; j < logits!.length; j++) if (logits![j]! > logits![best]!) best = j;
      if (model.info.eosTokenIds.includes(best)) break;
      out.push(best);
      [logits] = model.forward([{ seq, tokens: [best], logits: 'last' }]);
    }
    return tok.decode(out);
  };
  let right = 0;
  const qs: [number, number][] = [
    [7, 5],
    [3, 4],
    [2, 6],
    [8, 1],
    [5, 5],
    [9, 3],
  ];
  for (const [a, b] of qs) {
    const ans = ask(`What is ${a} plus ${b}?`);
    assert.match(ans, new RegExp(`^${a} plus ${b} is \\d+\\.$`), `answer to ${a} plus ${b}: ${JSON.stringify(ans)}`);
    if (ans === `${a} plus ${b} is ${a + b}.`) right++;
  }
  t.diagnostic(`right sums: ${right}/${qs.length}`);
  // The acceptance question, and most small sums (the shipped model gets 6/6 here; allow one slip so a
  // retrained model with a near miss elsewhere still passes).
  assert.equal(ask('What is 7 plus 5?'), '7 plus 5 is 12.');
  assert.ok(right >= qs.length - 1, `only ${right}/${qs.length} sums right`);
  // Two-digit questions: the example, then four held-out pairs (isHeldOutPair: never trained).
  assert.equal(ask('What is 23 plus 19?', 100), 'Ones: 3 plus 9 is 12, carry 1. Tens: 2 plus 1 plus 1 is 4. So 23 plus 19 is 42.');
  const two: [string, number][] = [
    ['72 plus 21', 93],
    ['86 plus 18', 104],
    ['73 minus 44', 29],
    ['90 minus 23', 67],
  ];
  const twoRight = two.filter(([q, want]) => ask(`What is ${q}?`, 100).endsWith(`So ${q} is ${want}.`)).length;
  assert.ok(twoRight >= two.length - 1, `only ${twoRight}/${two.length} two-digit answers right`);
});

test('models/default: word-initial tokenizer, and a capitalised request names the declared tool it asks for', async (t) => {
  if (!existsSync(DIR)) {
    t.skip('models/default missing');
    return;
  }
  const tok = loadTokenizer(DIR);
  const pieces = (s: string) => tok.encode(s).map((id) => tok.decode([id]));
  // "Query" and "query" differ only in the first token (models/default/README.md says why).
  assert.deepEqual(pieces('Query').slice(1), pieces('query').slice(1));
  assert.deepEqual([pieces('Query')[0], pieces('query')[0]], ['Q', 'q']);
  const loaded = await loadModel(DIR, { backend: 'typescript' });
  const fn = (name: string, description: string, params: Record<string, string>) => ({
    type: 'function' as const,
    function: {
      name,
      description,
      parameters: {
        type: 'object',
        properties: Object.fromEntries(Object.entries(params).map(([p, type]) => [p, { type, description: `The ${p}` }])),
        required: Object.keys(params),
      },
    },
  });
  // Two held-out requests (skillEvalSets): verbs, nouns and values from word lists training never drew from. The
  // model before the word-initial tokenizer answered the first with launch_museum and the second with obtain_lecture.
  const cases: [string, ReturnType<typeof fn>[], string, Record<string, unknown>][] = [
    [
      'Query the tide for Utix, please.',
      [
        fn('query_tide', 'Query the tide for a given captain', { captain: 'string' }),
        fn('launch_museum', 'Launch the museum for a given seats', { seats: 'integer' }),
      ],
      'query_tide',
      { captain: 'Utix' },
    ],
    [
      'Launch the tide for owner Ixtre, please.',
      [
        fn('launch_tide', 'Launch the tide for a given owner', { owner: 'string' }),
        fn('obtain_lecture', 'Obtain the lecture for a given flavor', { flavor: 'string' }),
        fn('report_museum', 'Report the museum for a given genre and flavor and region', {
          genre: 'string',
          flavor: 'string',
          region: 'string',
        }),
      ],
      'launch_tide',
      { owner: 'Ixtre' },
    ],
  ];
  try {
    for (const [q, tools, name, args] of cases) {
      const r = await loaded.createChat({ tools, sampling: { temperature: 0 } }).send(q, { maxTokens: 96 });
      assert.equal(r.toolCalls.length, 1, `${q} -> ${r.text}`);
      assert.equal(r.toolCalls[0]!.name, name, q);
      assert.deepEqual(JSON.parse(r.toolCalls[0]!.arguments), args, q);
    }
  } finally {
    loaded.dispose();
  }
});
