/**
 * Bilinear resize WITH antialias on 8-bit RGB, reproducing torch's
 * `torchvision.transforms.v2.functional.resize(uint8 tensor, BILINEAR, antialias=True)` as the Hugging Face
 * reference ran it: u8 → float32, torch's separable antialiased interpolation in float32 (horizontal pass over
 * every input row into a float32 buffer, then the vertical pass), round half to even, clamp, → u8.
 * sharp/libvips, Pillow and torch's AVX2 int16 fixed-point uint8 kernel all differ from it by a grey level on some
 * pixels (measured: the int16 kernel moved a global tile's sum by 82/338688 values against ../shared/images;
 * this float32 path reproduces every reference tile sum to within 1–2 pixels).
 *
 * Weights per output index i (input size n, output size m, all float32 as torch's scalar_t):
 *   scale = n/m; support = scale ≥ 1 ? scale : 1 (triangle filter of radius 1, stretched when downscaling);
 *   center = scale·(i + 0.5); xmin = max(trunc(center − support + 0.5), 0); xsize = min(trunc(center + support + 0.5), n) − xmin;
 *   w_j = tri(((j + xmin − center) + 0.5)·invscale) / Σ w.  Sum: w_0·x_0 then fused multiply-adds (the compiled
 *   torch loop contracts `out += t·w`; the FMA form matched the reference where separate rounding did not).
 */

const f = Math.fround;

interface Pass {
  readonly xmin: Int32Array;
  readonly xsize: Int32Array;
  readonly ksize: number;
  readonly weights: Float32Array; // [m, ksize]
}

function computePass(n: number, m: number): Pass {
  const scale = f(n / m);
  const support = scale >= 1 ? scale : 1; // interp_size (2) · 0.5 · max(scale, 1)
  const invscale = scale >= 1 ? f(1 / scale) : 1;
  const ksize = Math.ceil(support) * 2 + 1;
  const xmin = new Int32Array(m),
    xsize = new Int32Array(m);
  const weights = new Float32Array(m * ksize);
  for (let i = 0; i < m; i++) {
    const center = f(scale * (i + 0.5));
    // `center − support` is a float32 op; `+ 0.5` promotes to double in the C++ source before the int64 cast.
    const lo = Math.max(Math.trunc(f(center - support) + 0.5), 0);
    const size = Math.max(0, Math.min(Math.min(Math.trunc(f(center + support) + 0.5), n) - lo, ksize));
    xmin[i] = lo;
    xsize[i] = size;
    let total = 0;
    for (let j = 0; j < size; j++) {
      const a = Math.abs(f((f(f(j + lo) - center) + 0.5) * invscale));
      const w = a < 1 ? f(1 - a) : 0;
      weights[i * ksize + j] = w;
      total = f(total + w);
    }
    if (total !== 0) for (let j = 0; j < size; j++) weights[i * ksize + j] = f(weights[i * ksize + j]! / total);
  }
  return { xmin, xsize, ksize, weights };
}

/** Round half to even (torch.round), then clamp to a byte. */
function toByte(x: number): number {
  let r = Math.round(x);
  if (r - x === 0.5 && r % 2 !== 0) r -= 1; // Math.round sends halves up; even-ify
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

/**
 * Resizes an interleaved RGB u8 image [h, w, 3] to [outH, outW, 3]. A dimension whose size does not change skips
 * its pass (torch does the same; with these weights it would be the identity anyway).
 */
export function resizeBilinearAntialias(src: Uint8Array, h: number, w: number, outH: number, outW: number): Uint8Array {
  if (!(outH >= 1 && outW >= 1 && h >= 1 && w >= 1) || src.length !== h * w * 3) {
    throw new RangeError(`bad resize ${w}x${h} (${src.length} bytes) -> ${outW}x${outH}`);
  }
  if (outH === h && outW === w) return src.slice();
  // Horizontal pass (float32 buffer [h, outW, 3]).
  let cur: Float32Array;
  let curW = outW;
  if (outW !== w) {
    const p = computePass(w, outW);
    cur = new Float32Array(h * outW * 3);
    for (let y = 0; y < h; y++) {
      const row = y * w * 3;
      for (let x = 0; x < outW; x++) {
        const lo = p.xmin[x]!,
          size = p.xsize[x]!,
          wo = x * p.ksize;
        const oo = (y * outW + x) * 3;
        for (let c = 0; c < 3; c++) {
          const base = row + lo * 3 + c;
          let s = size > 0 ? f(src[base]! * p.weights[wo]!) : 0;
          for (let j = 1; j < size; j++) s = f(s + src[base + j * 3]! * p.weights[wo + j]!); // FMA: one rounding
          cur[oo + c] = s;
        }
      }
    }
  } else {
    cur = Float32Array.from(src);
    curW = w;
  }
  const out = new Uint8Array(outH * curW * 3);
  if (outH === h) {
    for (let i = 0; i < out.length; i++) out[i] = toByte(cur[i]!);
    return out;
  }
  // Vertical pass.
  const p = computePass(h, outH);
  const stride = curW * 3;
  for (let y = 0; y < outH; y++) {
    const lo = p.xmin[y]!,
      size = p.xsize[y]!,
      wo = y * p.ksize;
    for (let xc = 0; xc < stride; xc++) {
      let s = size > 0 ? f(cur[lo * stride + xc]! * p.weights[wo]!) : 0;
      for (let j = 1; j < size; j++) s = f(s + cur[(lo + j) * stride + xc]! * p.weights[wo + j]!);
      out[y * stride + xc] = toByte(s);
    }
  }
  return out;
}
