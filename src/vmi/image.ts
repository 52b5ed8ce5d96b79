// Guest kernel image access: bzImage -> decompressed vmlinux (ELF) and its sections. Only what
// the profile needs: section lookup by name and reads by virtual address.
import { gunzipSync } from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { SandtraceError } from '../errors.js';

export interface ElfSection { name: string; addr: bigint; offset: number; size: number; type: number }

export interface KernelElf {
  buf: Buffer;
  sections: ElfSection[];
  /** GNU build id (hex), from the .notes section. */
  buildId: string | null;
}

const MAGICS: { name: string; magic: number[]; tool?: string[] }[] = [
  { name: 'gzip', magic: [0x1f, 0x8b] },
  { name: 'xz', magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], tool: ['xz', '-dc', '--single-stream'] },
  { name: 'zstd', magic: [0x28, 0xb5, 0x2f, 0xfd], tool: ['zstd', '-dcq'] },
  { name: 'lz4', magic: [0x02, 0x21, 0x4c, 0x18], tool: ['lz4', '-dc'] },
  { name: 'lzma', magic: [0x5d, 0x00, 0x00], tool: ['xz', '-dc', '--format=lzma'] },
  { name: 'bzip2', magic: [0x42, 0x5a, 0x68], tool: ['bzip2', '-dc'] },
];

/** The compression Debian (or whoever) used for the payload, and the payload itself. */
export function bzImagePayload(img: Buffer): { compression: string; payload: Buffer } {
  if (img.length < 0x260 || img.toString('latin1', 0x202, 0x206) !== 'HdrS') {
    throw new SandtraceError('INPUT_FORMAT_UNKNOWN', 'not an x86 bzImage (no HdrS boot header)');
  }
  const setupSects = img[0x1f1] || 4;
  const payloadOffset = img.readUInt32LE(0x248);
  const payloadLength = img.readUInt32LE(0x24c);
  const start = (setupSects + 1) * 512 + payloadOffset;
  if (start + payloadLength > img.length) throw new SandtraceError('INPUT_CORRUPT', 'bzImage payload runs past the end of the file');
  const payload = img.subarray(start, start + payloadLength);
  for (const m of MAGICS) {
    if (m.magic.every((b, i) => payload[i] === b)) return { compression: m.name, payload };
  }
  throw new SandtraceError('INPUT_FORMAT_UNKNOWN', `unknown kernel payload compression (magic ${payload.subarray(0, 6).toString('hex')})`);
}

export function decompressKernel(img: Buffer): { compression: string; vmlinux: Buffer } {
  // Already an ELF (a vmlinux rather than a vmlinuz).
  if (img.length >= 4 && img.readUInt32BE(0) === 0x7f454c46) return { compression: 'none', vmlinux: img };
  const { compression, payload } = bzImagePayload(img);
  if (compression === 'gzip') return { compression, vmlinux: gunzipSync(payload) };
  const m = MAGICS.find((x) => x.name === compression);
  const [cmd, ...args] = m?.tool ?? [];
  if (!cmd) throw new SandtraceError('INTERNAL', `no decompressor for ${compression}`);
  const r = spawnSync(cmd, args, { input: payload, maxBuffer: 1 << 30 });
  // Trailing bytes after the stream (the kernel appends the size) make some tools complain
  // although the output is complete: judge by the ELF magic instead of the exit status.
  if (r.error || !r.stdout || r.stdout.length < 64 || r.stdout.readUInt32BE(0) !== 0x7f454c46) {
    throw new SandtraceError('VM_PROFILE_FAILED', `cannot decompress the ${compression} kernel payload with ${cmd}: ${r.error?.message ?? r.stderr?.toString().trim()}`, {
      details: { compression },
    });
  }
  return { compression, vmlinux: r.stdout };
}

export function parseElf(buf: Buffer): KernelElf {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) {
    throw new SandtraceError('VM_PROFILE_FAILED', 'decompressed kernel is not a little-endian ELF64');
  }
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  const shstrndx = buf.readUInt16LE(0x3e);
  const raw: { nameOff: number; type: number; addr: bigint; offset: number; size: number }[] = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    raw.push({
      nameOff: buf.readUInt32LE(o), type: buf.readUInt32LE(o + 4), addr: buf.readBigUInt64LE(o + 0x10),
      offset: Number(buf.readBigUInt64LE(o + 0x18)), size: Number(buf.readBigUInt64LE(o + 0x20)),
    });
  }
  const strtab = raw[shstrndx];
  if (!strtab) throw new SandtraceError('VM_PROFILE_FAILED', 'ELF has no section name table');
  const sections = raw.map((s) => {
    const start = strtab.offset + s.nameOff;
    const end = buf.indexOf(0, start);
    return { name: buf.toString('latin1', start, end), addr: s.addr, offset: s.offset, size: s.size, type: s.type };
  });
  return { buf, sections, buildId: findBuildId(buf, sections) };
}

function findBuildId(buf: Buffer, sections: ElfSection[]): string | null {
  for (const s of sections) {
    if (s.type !== 7) continue; // SHT_NOTE
    let o = s.offset;
    const end = s.offset + s.size;
    while (o + 12 <= end) {
      const namesz = buf.readUInt32LE(o), descsz = buf.readUInt32LE(o + 4), type = buf.readUInt32LE(o + 8);
      const name = buf.toString('latin1', o + 12, o + 12 + namesz).replace(/\0+$/, '');
      const desc = o + 12 + align4(namesz);
      if (name === 'GNU' && type === 3) return buf.toString('hex', desc, desc + descsz);
      o = desc + align4(descsz);
    }
  }
  return null;
}

const align4 = (n: number) => (n + 3) & ~3;

export function section(elf: KernelElf, name: string): ElfSection | undefined {
  return elf.sections.find((s) => s.name === name);
}

/** File offset of a kernel virtual address, or -1 when no loaded section holds it. */
export function vaddrToOffset(elf: KernelElf, addr: bigint): number {
  for (const s of elf.sections) {
    if (s.type === 8 || s.addr === 0n) continue; // NOBITS
    if (addr >= s.addr && addr < s.addr + BigInt(s.size)) return s.offset + Number(addr - s.addr);
  }
  return -1;
}
