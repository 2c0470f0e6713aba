/**
 * GPT-2's byte ↔ unicode table. Byte-level BPE vocabularies (HF tokenizer.json, GGUF `tokenizer.ggml.tokens`)
 * spell each byte as a printable character: printable Latin-1 bytes stand for themselves, the other 68 bytes map
 * to U+0100.. in order (space 0x20 → 'Ġ' U+0120, '\n' → 'Ċ' U+010A).
 */

const BYTE_TO_CHAR: string[] = [];
const CHAR_TO_BYTE = new Map<number, number>();
{
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    const cp = printable ? b : 256 + n++;
    BYTE_TO_CHAR[b] = String.fromCharCode(cp);
    CHAR_TO_BYTE.set(cp, b);
  }
}

/** The printable character standing for each byte (index = byte), as byte-level vocabularies spell them. */
export function gpt2ByteChars(): string[] {
  return [...BYTE_TO_CHAR];
}

/** Bytes → GPT-2 unicode form ("Ġhello"). */
export function bytesToUnicode(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += BYTE_TO_CHAR[b];
  return s;
}

/** GPT-2 unicode form → bytes, or undefined if a character is outside the 256-character table. */
export function unicodeToBytes(s: string): Uint8Array | undefined {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const b = CHAR_TO_BYTE.get(s.charCodeAt(i));
    if (b === undefined) return undefined;
    out[i] = b;
  }
  return out;
}

/** GPT-2 unicode form → a "binary string" (one char per byte, codes 0–255), or undefined if not byte-level. */
export function unicodeToBinary(s: string): string | undefined {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const b = CHAR_TO_BYTE.get(s.charCodeAt(i));
    if (b === undefined) return undefined;
    out += String.fromCharCode(b);
  }
  return out;
}
