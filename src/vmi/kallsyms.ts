// kallsyms recovered from the image alone: the compressed symbol tables the kernel keeps in
// .rodata (token_table, token_index, markers, names, offsets + relative_base), found by their
// structure the way vmlinux-to-elf does, since the image has no symbol table.
import { SandtraceError } from '../errors.js';

export interface KSym { name: string; type: string; addr: bigint }

const DIGITS = Buffer.from('0\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00', 'latin1');
const align8 = (n: number) => (n + 7) & ~7;

/** Decode every kallsyms entry in `ro` (the .rodata bytes). */
export function parseKallsyms(ro: Buffer, textAddr = 0xffffffff81000000n): KSym[] {
  for (let p = ro.indexOf(DIGITS); p >= 0; p = ro.indexOf(DIGITS, p + 1)) {
    const r = tryAt(ro, p, textAddr);
    if (r) return r;
  }
  throw new SandtraceError('VM_PROFILE_FAILED', 'kallsyms tables not found in .rodata (kernel built without CONFIG_KALLSYMS_ALL?)');
}

function tryAt(ro: Buffer, digits: number, textAddr: bigint): KSym[] | null {
  // Tokens '0'..'9' stay single-character tokens at indexes 0x30..0x39: walk back 0x30 strings.
  let t = digits;
  for (let i = 0; i < 0x30; i++) {
    if (t < 2 || ro[t - 1] !== 0) return null;
    let s = t - 2;
    while (s >= 0 && ro[s] !== 0) s--;
    t = s + 1;
    if (t >= digits) return null;
  }
  const tokenTable = t;
  const tokOffsets: number[] = [];
  let o = tokenTable;
  for (let i = 0; i < 256; i++) {
    tokOffsets.push(o - tokenTable);
    const e = ro.indexOf(0, o);
    if (e < 0 || e === o) return null;
    o = e + 1;
  }
  // token_index: 256 u16 offsets, 8-aligned, right after the table.
  const idx = align8(o);
  if (idx + 512 > ro.length) return null;
  for (let i = 0; i < 256; i++) if (ro.readUInt16LE(idx + 2 * i) !== tokOffsets[i]) return null;
  const tokens = tokOffsets.map((off) => ro.toString('latin1', tokenTable + off, ro.indexOf(0, tokenTable + off)));

  // Without kallsyms_seqs_of_names, markers (u32, increasing from 0) end right before
  // token_table; with it (6.2+, and Debian's 6.1 backport) 3 bytes per symbol sit in between.
  const direct = walkMarkers(ro, tokenTable);
  if (direct) {
    const r = fromMarkers(ro, direct.start, direct.markers, tokens, null, idx + 512, textAddr);
    if (r) return r;
  }
  for (let n = 256; 3 * n < tokenTable; n++) {
    const seqs = (tokenTable - 3 * n) & ~7;
    const m = Math.ceil(n / 256);
    const ms = seqs - align8(4 * m);
    if (ms < 0) break;
    if (ro.readUInt32LE(ms) !== 0) continue;
    const markers: number[] = [];
    let ok = true;
    for (let i = 0; i < m; i++) {
      const v = ro.readUInt32LE(ms + 4 * i);
      if (i > 0 && v <= (markers[i - 1] ?? 0)) { ok = false; break; }
      markers.push(v);
    }
    if (!ok) continue;
    const r = fromMarkers(ro, ms, markers, tokens, n, idx + 512, textAddr);
    if (r) return r;
  }
  return null;
}

function walkMarkers(ro: Buffer, tokenTable: number): { start: number; markers: number[] } | null {
  let m = tokenTable - 4;
  while (m > 0 && ro.readUInt32LE(m) === 0 && tokenTable - m <= 8) m -= 4;
  const markers: number[] = [];
  while (m >= 0) {
    const v = ro.readUInt32LE(m);
    markers.unshift(v);
    if (v === 0) break;
    if (m < 4 || ro.readUInt32LE(m - 4) >= v) return null;
    m -= 4;
  }
  return markers.length >= 2 ? { start: m, markers } : null;
}

function fromMarkers(ro: Buffer, markersStart: number, markers: number[], tokens: string[], want: number | null,
  tokenIndexEnd: number, textAddr: bigint): KSym[] | null {
  const nm = markers.length;
  const lastMarker = markers[nm - 1] ?? 0;
  if (nm < 2) return null;
  // names end just before markers; find names start S with num_syms (u32) 8 bytes before it.
  const lo = Math.max(8, markersStart - lastMarker - 256 * 128);
  for (let s = align8(markersStart - lastMarker - 8); s >= lo; s -= 8) {
    const n = ro.readUInt32LE(s - 8);
    if (n <= (nm - 1) * 256 || n > nm * 256 || (want !== null && n !== want)) continue;
    const names = decodeNames(ro, s, n, tokens, markersStart);
    if (!names || names.markers[1] !== markers[1]) continue;
    if (markersStart - names.end > 8) continue;
    return addresses(ro, names.list, s, tokenIndexEnd, textAddr);
  }
  return null;
}

/**
 * Where offsets + relative_base live changed over time: before num_syms (up to 6.3) or after
 * token_index (6.4+); and the per-CPU absolute encoding was dropped (6.11+). Pick the
 * combination that puts `_text` at the .text address.
 */
function addresses(ro: Buffer, list: string[], namesStart: number, tokenIndexEnd: number, textAddr: bigint): KSym[] | null {
  const n = list.length;
  const textIdx = list.findIndex((x) => x.slice(1) === '_text');
  const candidates: number[] = [];
  const before = namesStart - 16 - align8(4 * n);
  if (before >= 0) candidates.push(before);
  const after = align8(tokenIndexEnd);
  if (after + 4 * n + 8 <= ro.length) candidates.push(after);
  for (const offStart of candidates) {
    const relBase = ro.readBigUInt64LE(offStart + align8(4 * n));
    for (const absPercpu of [true, false]) {
      const addrOf = (i: number) => {
        const off = ro.readInt32LE(offStart + 4 * i);
        // CONFIG_KALLSYMS_ABSOLUTE_PERCPU: non-negative = absolute (per-CPU), negative = relative.
        if (absPercpu) return off >= 0 ? BigInt(off) : relBase - 1n - BigInt(off);
        return relBase + BigInt(off >>> 0);
      };
      if (textIdx < 0 || addrOf(textIdx) !== textAddr) continue;
      return list.map((full, i) => ({ type: full.slice(0, 1), name: full.slice(1), addr: addrOf(i) }));
    }
  }
  return null;
}

function decodeNames(ro: Buffer, start: number, n: number, tokens: string[], limit: number):
  { list: string[]; end: number; markers: number[] } | null {
  const list: string[] = [];
  const markers: number[] = [];
  let o = start;
  for (let i = 0; i < n; i++) {
    if (i % 256 === 0) markers.push(o - start);
    if (o >= limit) return null;
    let len = ro[o++] ?? 0;
    if (len & 0x80) len = (len & 0x7f) | ((ro[o++] ?? 0) << 7); // big symbols (6.1+)
    if (len === 0 || o + len > limit) return null;
    let s = '';
    for (let k = 0; k < len; k++) s += tokens[ro[o + k] ?? 0];
    list.push(s);
    o += len;
  }
  return { list, end: o, markers };
}
