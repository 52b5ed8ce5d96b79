// BTF (the kernel's own type information, the .BTF section) parsed in TypeScript: struct
// layouts with bit offsets, and the per-CPU variable offsets from the .data..percpu DATASEC.
import { SandtraceError } from '../errors.js';

export const BTF_KIND = {
  INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8, VOLATILE: 9, CONST: 10,
  RESTRICT: 11, FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15, FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19,
} as const;

export interface BtfMember { name: string; type: number; bitOffset: number; bitfieldSize: number }
export interface BtfType {
  id: number;
  kind: number;
  name: string;
  /** size for INT/STRUCT/UNION/ENUM/DATASEC; referenced type id for PTR/TYPEDEF/CONST/VAR/... */
  sizeOrType: number;
  members?: BtfMember[];
  /** DATASEC entries: variable type id, offset within the section, size. */
  vars?: { type: number; offset: number; size: number }[];
  array?: { type: number; nelems: number };
}

export class Btf {
  readonly types: (BtfType | undefined)[] = [undefined];
  private readonly byName = new Map<string, BtfType[]>();

  constructor(buf: Buffer) {
    if (buf.length < 24 || buf.readUInt16LE(0) !== 0xeb9f) throw new SandtraceError('VM_PROFILE_FAILED', 'the .BTF section has no BTF magic');
    const hdrLen = buf.readUInt32LE(4);
    const typeOff = hdrLen + buf.readUInt32LE(8), typeLen = buf.readUInt32LE(12);
    const strOff = hdrLen + buf.readUInt32LE(16), strLen = buf.readUInt32LE(20);
    const str = (off: number) => {
      if (off === 0 || off >= strLen) return '';
      return buf.toString('latin1', strOff + off, buf.indexOf(0, strOff + off));
    };
    let o = typeOff;
    const end = typeOff + typeLen;
    while (o < end) {
      const nameOff = buf.readUInt32LE(o), info = buf.readUInt32LE(o + 4), sizeOrType = buf.readUInt32LE(o + 8);
      o += 12;
      const vlen = info & 0xffff, kind = (info >>> 24) & 0x1f, kflag = info >>> 31;
      const t: BtfType = { id: this.types.length, kind, name: str(nameOff), sizeOrType };
      switch (kind) {
        case BTF_KIND.INT: case BTF_KIND.VAR: case BTF_KIND.DECL_TAG: o += 4; break;
        case BTF_KIND.ARRAY:
          t.array = { type: buf.readUInt32LE(o), nelems: buf.readUInt32LE(o + 8) };
          o += 12; break;
        case BTF_KIND.STRUCT: case BTF_KIND.UNION: {
          const members: BtfMember[] = [];
          for (let i = 0; i < vlen; i++, o += 12) {
            const off = buf.readUInt32LE(o + 8);
            members.push({
              name: str(buf.readUInt32LE(o)), type: buf.readUInt32LE(o + 4),
              bitOffset: kflag ? off & 0xffffff : off, bitfieldSize: kflag ? off >>> 24 : 0,
            });
          }
          t.members = members;
          break;
        }
        case BTF_KIND.ENUM: case BTF_KIND.FUNC_PROTO: o += 8 * vlen; break;
        case BTF_KIND.ENUM64: o += 12 * vlen; break;
        case BTF_KIND.DATASEC: {
          t.vars = [];
          for (let i = 0; i < vlen; i++, o += 12) t.vars.push({ type: buf.readUInt32LE(o), offset: buf.readUInt32LE(o + 4), size: buf.readUInt32LE(o + 8) });
          break;
        }
        case BTF_KIND.PTR: case BTF_KIND.FWD: case BTF_KIND.TYPEDEF: case BTF_KIND.VOLATILE: case BTF_KIND.CONST:
        case BTF_KIND.RESTRICT: case BTF_KIND.FUNC: case BTF_KIND.FLOAT: case BTF_KIND.TYPE_TAG: break;
        default: throw new SandtraceError('VM_PROFILE_FAILED', `unknown BTF kind ${kind} at type ${t.id}`);
      }
      this.types.push(t);
      if (t.name) {
        const l = this.byName.get(t.name);
        if (l) l.push(t); else this.byName.set(t.name, [t]);
      }
    }
  }

  /** The struct (or union) definition named `name`, never a forward declaration. */
  struct(name: string): BtfType | undefined {
    return this.byName.get(name)?.find((t) => (t.kind === BTF_KIND.STRUCT || t.kind === BTF_KIND.UNION) && t.members);
  }

  /** Skip typedefs and qualifiers. */
  resolve(id: number): BtfType | undefined {
    let t = this.types[id];
    while (t && (t.kind === BTF_KIND.TYPEDEF || t.kind === BTF_KIND.VOLATILE || t.kind === BTF_KIND.CONST ||
      t.kind === BTF_KIND.RESTRICT || t.kind === BTF_KIND.TYPE_TAG)) t = this.types[t.sizeOrType];
    return t;
  }

  /**
   * Byte offset of `path` (e.g. 'd_name.name') inside struct `structName`, looking through
   * anonymous struct/union members (task_struct and mm_struct nest fields in them).
   */
  offsetOf(structName: string, path: string): number | undefined {
    let t = this.struct(structName);
    let total = 0;
    for (const part of path.split('.')) {
      if (!t) return undefined;
      const found = this.findMember(t, part);
      if (!found) return undefined;
      total += found.bitOffset;
      t = this.resolve(found.type);
    }
    return total % 8 === 0 ? total / 8 : undefined;
  }

  private findMember(t: BtfType, name: string): { bitOffset: number; type: number } | undefined {
    for (const m of t.members ?? []) {
      if (m.name === name) return { bitOffset: m.bitOffset, type: m.type };
      if (m.name === '') {
        const inner = this.resolve(m.type);
        if (inner?.members) {
          const f = this.findMember(inner, name);
          if (f) return { bitOffset: m.bitOffset + f.bitOffset, type: f.type };
        }
      }
    }
    return undefined;
  }

  sizeOf(structName: string): number | undefined {
    return this.struct(structName)?.sizeOrType;
  }

  /** Offset of a per-CPU variable in .data..percpu (linked at 0 on x86_64). */
  percpuOffset(varName: string): number | undefined {
    const sec = this.byName.get('.data..percpu')?.find((t) => t.kind === BTF_KIND.DATASEC);
    for (const v of sec?.vars ?? []) {
      if (this.types[v.type]?.name === varName) return v.offset;
    }
    return undefined;
  }
}
