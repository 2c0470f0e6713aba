/**
 * An independent, deliberately naive float64 Llama 4 text forward for tests (spec §2), written straight from the
 * Hugging Face modelling code and reading HF-named tensors in HF layouts (experts used as x @ W). It shares no code
 * with src/model, so agreement checks the port, not the port against itself. Full sequence, no cache.
 */
type T = { shape: number[]; data: Float32Array };

export function referenceLogits(config: Record<string, any>, tensors: Map<string, T>, ids: number[]): Float64Array[] {
  const H = config.hidden_size,
    nh = config.num_attention_heads,
    nkv = config.num_key_value_heads,
    d = config.head_dim;
  const L = config.num_hidden_layers,
    E = config.num_local_experts,
    I = config.intermediate_size,
    V = config.vocab_size;
  const eps = config.rms_norm_eps,
    C = config.attention_chunk_size;
  const interval = config.no_rope_layer_interval ?? 4;
  const noRope: number[] = config.no_rope_layers?.length
    ? config.no_rope_layers
    : Array.from({ length: L }, (_, l) => ((l + 1) % interval !== 0 ? 1 : 0));
  const step = config.interleave_moe_layer_step ?? 1;
  const moe: number[] = config.moe_layers ?? Array.from({ length: L }, (_, l) => l).filter((l) => l % step === step - 1);
  const get = (n: string) => {
    const t = tensors.get(n);
    if (!t) throw new Error(`reference: missing ${n}`);
    return t.data;
  };
  const Tn = ids.length;
  // inv_freq with llama3 scaling (fp32 like torch)
  const inv: number[] = [];
  for (let j = 0; j < d / 2; j++) inv.push(Math.fround(1 / Math.fround(Math.pow(config.rope_theta, Math.fround((2 * j) / d)))));
  const rs = config.rope_scaling;
  if (rs && rs.rope_type === 'llama3') {
    const lw = rs.original_max_position_embeddings / rs.low_freq_factor,
      hw = rs.original_max_position_embeddings / rs.high_freq_factor;
    for (let j = 0; j < inv.length; j++) {
      const wl = (2 * Math.PI) / inv[j]!;
      if (wl < hw) continue;
      if (wl > lw) {
        inv[j] = inv[j]! / rs.factor;
        continue;
      }
      const s = (rs.original_max_position_embeddings / wl - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
      inv[j] = (1 - s) * (inv[j]! / rs.factor) + s * inv[j]!;
    }
  }
  const rms = (x: Float64Array, w: Float32Array | null) => {
    let ss = 0;
    for (const v of x) ss += v * v;
    const r = 1 / Math.sqrt(ss / x.length + eps);
    return x.map((v, i) => v * r * (w ? w[i]! : 1));
  };
  const linear = (x: Float64Array, W: Float32Array, out: number, inn: number, off = 0) => {
    const y = new Float64Array(out);
    for (let o = 0; o < out; o++) {
      let s = 0;
      for (let i = 0; i < inn; i++) s += x[i]! * W[off + o * inn + i]!;
      y[o] = s;
    }
    return y;
  };
  const silu = (v: number) => v / (1 + Math.exp(-v));
  const emb = get('model.embed_tokens.weight');
  let h = ids.map((id) => Float64Array.from(emb.subarray(id * H, (id + 1) * H)));
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    const useRope = noRope[l] !== 0;
    const a = h.map((x) => rms(x, get(p + 'input_layernorm.weight')));
    const q = a.map((x) => linear(x, get(p + 'self_attn.q_proj.weight'), nh * d, H));
    const k = a.map((x) => linear(x, get(p + 'self_attn.k_proj.weight'), nkv * d, H));
    const v = a.map((x) => linear(x, get(p + 'self_attn.v_proj.weight'), nkv * d, H));
    const rot = (x: Float64Array, heads: number, pos: number) => {
      for (let hh = 0; hh < heads; hh++)
        for (let j = 0; j < d / 2; j++) {
          const th = Math.fround(pos * inv[j]!),
            c = Math.cos(th),
            s = Math.sin(th);
          const o = hh * d + 2 * j,
            x0 = x[o]!,
            x1 = x[o + 1]!;
          x[o] = x0 * c - x1 * s;
          x[o + 1] = x0 * s + x1 * c;
        }
    };
    const headNorm = (x: Float64Array, heads: number) => {
      for (let hh = 0; hh < heads; hh++) {
        let ss = 0;
        for (let i = 0; i < d; i++) ss += x[hh * d + i]! ** 2;
        const r = 1 / Math.sqrt(ss / d + eps);
        for (let i = 0; i < d; i++) x[hh * d + i] = x[hh * d + i]! * r;
      }
    };
    for (let t = 0; t < Tn; t++) {
      if (useRope) {
        rot(q[t]!, nh, t);
        rot(k[t]!, nkv, t);
        if (config.use_qk_norm) {
          headNorm(q[t]!, nh);
          headNorm(k[t]!, nkv);
        }
      } else if (config.attn_temperature_tuning) {
        const sc = Math.log(Math.floor((t + 1) / config.floor_scale) + 1) * config.attn_scale + 1;
        for (let i = 0; i < nh * d; i++) q[t]![i] = q[t]![i]! * sc;
      }
    }
    const attnOut = q.map((qt, t) => {
      const o = new Float64Array(nh * d);
      for (let hh = 0; hh < nh; hh++) {
        const kvh = Math.floor(hh / (nh / nkv));
        const sc: number[] = [],
          keys: number[] = [];
        for (let s = 0; s <= t; s++) {
          // attention_chunk_size null: HF gives RoPE layers the plain causal mask (no chunking).
          if (useRope && C != null && Math.floor(s / C) !== Math.floor(t / C)) continue;
          let dot = 0;
          for (let i = 0; i < d; i++) dot += qt[hh * d + i]! * k[s]![kvh * d + i]!;
          sc.push(dot / Math.sqrt(d));
          keys.push(s);
        }
        const m = Math.max(...sc);
        const ex = sc.map((x) => Math.exp(x - m));
        const z = ex.reduce((x, y) => x + y, 0);
        keys.forEach((s, j) => {
          for (let i = 0; i < d; i++) o[hh * d + i]! += (ex[j]! / z) * v[s]![kvh * d + i]!;
        });
      }
      return linear(o, get(p + 'self_attn.o_proj.weight'), H, nh * d);
    });
    h = h.map((x, t) => x.map((vv, i) => vv + attnOut[t]![i]!));
    const f = h.map((x) => rms(x, get(p + 'post_attention_layernorm.weight')));
    const ffn = f.map((x) => {
      if (!moe.includes(l)) {
        const Im = config.intermediate_size_mlp;
        const g = linear(x, get(p + 'feed_forward.gate_proj.weight'), Im, H),
          u = linear(x, get(p + 'feed_forward.up_proj.weight'), Im, H);
        return linear(
          g.map((gv, i) => silu(gv) * u[i]!),
          get(p + 'feed_forward.down_proj.weight'),
          H,
          Im,
        );
      }
      const r = linear(x, get(p + 'feed_forward.router.weight'), E, H);
      let best = 0;
      for (let e = 1; e < E; e++) if (r[e]! > r[best]!) best = e;
      const score = 1 / (1 + Math.exp(-r[best]!));
      const xe = x.map((vv) => vv * score);
      const gu = get(p + 'feed_forward.experts.gate_up_proj'),
        dn = get(p + 'feed_forward.experts.down_proj');
      const mid = new Float64Array(I);
      for (let j = 0; j < I; j++) {
        let g = 0,
          u = 0;
        for (let i = 0; i < H; i++) {
          g += xe[i]! * gu[best * H * 2 * I + i * 2 * I + j]!;
          u += xe[i]! * gu[best * H * 2 * I + i * 2 * I + I + j]!;
        }
        mid[j] = silu(g) * u;
      }
      const y = new Float64Array(H);
      for (let o = 0; o < H; o++) {
        let s = 0;
        for (let j = 0; j < I; j++) s += mid[j]! * dn[best * I * H + j * H + o]!;
        y[o] = s;
      }
      const g = linear(x, get(p + 'feed_forward.shared_expert.gate_proj.weight'), I, H),
        u = linear(x, get(p + 'feed_forward.shared_expert.up_proj.weight'), I, H);
      const sh = linear(
        g.map((gv, i) => silu(gv) * u[i]!),
        get(p + 'feed_forward.shared_expert.down_proj.weight'),
        H,
        I,
      );
      return sh.map((s, i) => s + y[i]!);
    });
    h = h.map((x, t) => x.map((vv, i) => vv + ffn[t]![i]!));
  }
  return h.map((x) => linear(rms(x, get('model.norm.weight')), get('lm_head.weight'), V, H));
}
