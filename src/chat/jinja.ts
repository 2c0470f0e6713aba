/**
 * Chat-template rendering on @huggingface/jinja, set up the way transformers sets up Python Jinja2 (trim_blocks,
 * lstrip_blocks, `raise_exception`, `strftime_now`, `tojson` = json.dumps(ensure_ascii=False)), plus the Python
 * behaviour @huggingface/jinja 0.5.11 lacks and Llama 4 templates use:
 * - the `format` filter and the string `%` operator (Python %-formatting; vLLM's pythonic template needs it);
 * - `~` and `{{ x }}` writing Python str(): True/False/None, dicts and lists as Python repr, undefined as '';
 * - `{{ none }}` printing "None" (Jinja2 does; @huggingface/jinja prints nothing);
 * - `trim` as Python's str.strip() (keeps U+FEFF, strips U+0085; JavaScript's trim does the opposite).
 * The additions are attached to one Interpreter instance, never to the library's shared prototype.
 */
import { Environment, Interpreter, parse, tokenize } from '@huggingface/jinja';
import { percentFormat, pyStr, pyStrip, strftime, type RuntimeLike } from './python-format.ts';

type Program = ReturnType<typeof parse>;
interface Node {
  type: string;
  [k: string]: unknown;
}
type Value = RuntimeLike & { toString(): string };
type Fn = (...args: unknown[]) => Value;

/** Node types that are statements (their value is not output as an expression is). */
const STATEMENTS = new Set(['Program', 'If', 'For', 'Break', 'Continue', 'Set', 'Macro', 'Comment', 'CallStatement', 'FilterStatement']);

/** The runtime value classes, taken from values the library makes (they are not exported). */
const probe = new Environment();
const StringValue = (probe.set('__s', '') as object).constructor as new (s: string) => Value;

/** A parsed chat template. Parse errors throw here; render errors (incl. raise_exception) throw from render. */
export class JinjaTemplate {
  private readonly program: Program;

  constructor(readonly source: string) {
    this.program = parse(tokenize(source, { lstrip_blocks: true, trim_blocks: true }));
  }

  render(context: Record<string, unknown>): string {
    const env = new Environment();
    env.set('false', false);
    env.set('true', true);
    env.set('none', null);
    env.set('False', false);
    env.set('True', true);
    env.set('None', null);
    env.set('raise_exception', (msg: unknown) => {
      throw new TemplateRaisedError(String(msg));
    });
    env.set('range', (a: number, b?: number, step = 1) => {
      const [start, stop] = b === undefined ? [0, a] : [a, b];
      const out: number[] = [];
      if (step === 0) throw new Error('range() arg 3 must not be zero');
      for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
      return out;
    });
    env.set('strftime_now', (fmt: string) => strftime(new Date(), fmt));
    for (const [k, v] of Object.entries(context)) if (v !== undefined) env.set(k, v);
    const interp = new Interpreter(env);
    pythonize(interp);
    return (interp.run(this.program) as Value).value as string;
  }
}

/** `raise_exception(msg)` from a template: the template itself refuses the input. */
export class TemplateRaisedError extends Error {
  override readonly name = 'TemplateRaisedError';
}

/** Instance-level overrides that give Python Jinja2's results (see the file comment). */
function pythonize(interp: Interpreter): void {
  const self = interp as unknown as Record<string, Fn>;
  const base = Interpreter.prototype as unknown as Record<string, Fn>;
  const applyFilter = base.applyFilter!;
  const binary = base.evaluateBinaryExpression!;
  const evaluate = (node: unknown, env: unknown): Value => (interp.evaluate as unknown as Fn).call(interp, node, env);

  self.applyFilter = function (this: unknown, operand: unknown, filterNode: unknown, env: unknown): Value {
    const f = filterNode as Node;
    const op = operand as Value;
    const name = f.type === 'Identifier' ? (f.value as string) : f.type === 'CallExpression' ? ((f.callee as Node).value as string) : '';
    if (name === 'format') {
      // Jinja2's do_format: soft_str(value) % (kwargs or args)
      const args: Value[] = [];
      const kwargs = new Map<string, Value>();
      for (const a of (f.args as Node[] | undefined) ?? []) {
        if (a.type === 'KeywordArgumentExpression') kwargs.set((a.key as Node).value as string, evaluate(a.value, env));
        else args.push(evaluate(a, env));
      }
      if (args.length && kwargs.size) throw new Error("can't handle positional and keyword arguments at the same time");
      return new StringValue(percentFormat(pyStr(op), kwargs.size ? kwargs : args));
    }
    if (name === 'string' && f.type === 'Identifier') return new StringValue(pyStr(op));
    // Jinja2's trim is Python's str.strip(): it keeps U+FEFF and strips U+0085, unlike String.prototype.trim.
    if (name === 'trim' && f.type === 'Identifier') return new StringValue(pyStrip(pyStr(op)));
    return applyFilter.call(this, operand, filterNode, env);
  };

  self.evaluateBinaryExpression = function (this: unknown, node: unknown, env: unknown): Value {
    const n = node as Node;
    const operator = (n.operator as Node).value as string;
    if (operator === '~') {
      const l = evaluate(n.left, env);
      const r = evaluate(n.right, env);
      return new StringValue(pyStr(l) + pyStr(r));
    }
    if (operator === '%') {
      const l = evaluate(n.left, env);
      if (l.type === 'StringValue') {
        const r = evaluate(n.right, env);
        const args = r.type === 'TupleValue' ? (r.value as Value[]) : r.type === 'ObjectValue' ? (r.value as Map<string, Value>) : [r];
        return new StringValue(percentFormat(l.value as string, args));
      }
    }
    return binary.call(this, node, env);
  };

  self.evaluateBlock = function (this: unknown, statements: unknown, env: unknown): Value {
    let out = '';
    for (const st of statements as Node[]) {
      const v = evaluate(st, env);
      if (v.type === 'UndefinedValue') continue;
      if (v.type === 'NullValue') {
        if (!STATEMENTS.has(st.type)) out += 'None';
        continue;
      }
      out += v.type === 'StringValue' ? (v.value as string) : STATEMENTS.has(st.type) ? v.toString() : pyStr(v);
    }
    return new StringValue(out);
  };
}
