/** Prometheus text-format metrics: counters, gauges read at scrape time, and latency histograms. */

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

class Histogram {
  private readonly counts = new Map<string, { buckets: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly bounds = LATENCY_BUCKETS,
  ) {}
  observe(labels: string, v: number): void {
    let h = this.counts.get(labels);
    if (!h) this.counts.set(labels, (h = { buckets: this.bounds.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < this.bounds.length; i++) if (v <= this.bounds[i]!) h.buckets[i]!++;
    h.sum += v;
    h.count++;
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    for (const [labels, h] of this.counts) {
      const sep = labels ? ',' : '';
      this.bounds.forEach((b, i) => out.push(`${this.name}_bucket{${labels}${sep}le="${b}"} ${h.buckets[i]}`));
      out.push(`${this.name}_bucket{${labels}${sep}le="+Inf"} ${h.count}`);
      out.push(`${this.name}_sum${labels ? `{${labels}}` : ''} ${h.sum}`, `${this.name}_count${labels ? `{${labels}}` : ''} ${h.count}`);
    }
  }
}

class Counter {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels = '', by = 1): void {
    this.values.set(labels, (this.values.get(labels) ?? 0) + by);
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    if (this.values.size === 0) out.push(`${this.name} 0`);
    for (const [l, v] of this.values) out.push(`${this.name}${l ? `{${l}}` : ''} ${v}`);
  }
}

const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export class Metrics {
  readonly requests = new Counter('llama4_requests_total', 'HTTP requests by route and status code.');
  readonly promptTokens = new Counter('llama4_prompt_tokens_total', 'Prompt tokens of completed requests.');
  readonly generatedTokens = new Counter('llama4_generation_tokens_total', 'Tokens generated for completed requests.');
  readonly latency = new Histogram('llama4_request_duration_seconds', 'Request latency by route.');
  readonly ttft = new Histogram('llama4_time_to_first_token_seconds', 'Time from request to its first generated token.');
  constructor(private readonly gauges: () => Record<string, { help: string; value: number }>) {}

  /**
   * `route` must be a route pattern (routeLabel), never a raw path: each distinct label is a series kept forever,
   * so unauthenticated requests to made-up paths would otherwise grow the metrics without bound.
   */
  request(route: string, status: number, seconds: number): void {
    this.requests.inc(`route="${esc(route)}",status="${status}"`);
    this.latency.observe(`route="${esc(route)}"`, seconds);
  }

  render(): string {
    const out: string[] = [];
    this.requests.render(out);
    this.promptTokens.render(out);
    this.generatedTokens.render(out);
    for (const [name, g] of Object.entries(this.gauges()))
      out.push(`# HELP ${name} ${g.help}`, `# TYPE ${name} gauge`, `${name} ${g.value}`);
    this.latency.render(out);
    this.ttft.render(out);
    return out.join('\n') + '\n';
  }
}

/** The label of a request path: the pattern of the route it matches ('/v1/models/:id'), or 'unmatched'. */
export function routeLabeler(patterns: () => readonly string[]): (path: string) => string {
  let compiled: { pattern: string; re: RegExp }[] | null = null;
  return (path) => {
    compiled ??= [...new Set(patterns())]
      .filter((p) => !p.includes('*'))
      .map((p) => ({
        pattern: p,
        re: new RegExp(
          `^${p
            .split('/')
            .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
            .join('/')}/?$`,
        ),
      }));
    for (const r of compiled) if (r.re.test(path)) return r.pattern;
    return 'unmatched';
  };
}
