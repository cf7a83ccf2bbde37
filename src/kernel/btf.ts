/**
 * A small reader of raw BTF (the kernel's type format), enough to check that
 * the TypeScript record decoders agree with the C structs compiled into each
 * object: struct sizes, member names, offsets and sizes.
 * Format: Documentation/bpf/btf.rst (header, type section, string section).
 */
const BTF_MAGIC = 0xeb9f;

export const enum Kind {
  INT = 1, PTR = 2, ARRAY = 3, STRUCT = 4, UNION = 5, ENUM = 6, FWD = 7, TYPEDEF = 8,
  VOLATILE = 9, CONST = 10, RESTRICT = 11, FUNC = 12, FUNC_PROTO = 13, VAR = 14,
  DATASEC = 15, FLOAT = 16, DECL_TAG = 17, TYPE_TAG = 18, ENUM64 = 19,
}

export interface BtfMember {
  name: string;
  type: number;
  /** offset in bits */
  bitOffset: number;
  /** bitfield size in bits, 0 when not a bitfield */
  bitSize: number;
}

export interface BtfType {
  id: number;
  kind: Kind;
  name: string;
  /** size for INT/STRUCT/UNION/ENUM/DATASEC/FLOAT, referenced type id otherwise */
  sizeOrType: number;
  members?: BtfMember[];
  array?: { type: number; indexType: number; nelems: number };
  enumValues?: { name: string; value: number | bigint }[];
}

export class BtfFormatError extends Error {}

export class Btf {
  private readonly types: BtfType[] = [];
  private readonly byName = new Map<string, BtfType[]>();

  static parse(buf: Buffer): Btf {
    const btf = new Btf();
    if (buf.length < 24) throw new BtfFormatError(`BTF is ${buf.length} bytes, shorter than its header`);
    const magic = buf.readUInt16LE(0);
    if (magic !== BTF_MAGIC) throw new BtfFormatError(`bad BTF magic 0x${magic.toString(16)}`);
    const hdrLen = buf.readUInt32LE(4);
    const typeOff = buf.readUInt32LE(8);
    const typeLen = buf.readUInt32LE(12);
    const strOff = buf.readUInt32LE(16);
    const strLen = buf.readUInt32LE(20);
    const tStart = hdrLen + typeOff;
    const tEnd = tStart + typeLen;
    const sStart = hdrLen + strOff;
    if (tEnd > buf.length || sStart + strLen > buf.length) throw new BtfFormatError('BTF sections run past the end of the data');
    const str = (off: number): string => {
      if (off >= strLen) throw new BtfFormatError(`string offset ${off} out of range`);
      const end = buf.indexOf(0, sStart + off);
      return buf.toString('utf8', sStart + off, end < 0 ? sStart + strLen : end);
    };
    let p = tStart;
    let id = 1;
    while (p < tEnd) {
      const nameOff = buf.readUInt32LE(p);
      const info = buf.readUInt32LE(p + 4);
      const sizeOrType = buf.readUInt32LE(p + 8);
      p += 12;
      const vlen = info & 0xffff;
      const kind = ((info >> 24) & 0x1f) as Kind;
      const kindFlag = (info >>> 31) === 1;
      const t: BtfType = { id, kind, name: str(nameOff), sizeOrType };
      switch (kind) {
        case Kind.INT: case Kind.VAR: case Kind.DECL_TAG:
          p += 4;
          break;
        case Kind.ARRAY:
          t.array = { type: buf.readUInt32LE(p), indexType: buf.readUInt32LE(p + 4), nelems: buf.readUInt32LE(p + 8) };
          p += 12;
          break;
        case Kind.STRUCT: case Kind.UNION:
          t.members = [];
          for (let i = 0; i < vlen; i++, p += 12) {
            const off = buf.readUInt32LE(p + 8);
            t.members.push({
              name: str(buf.readUInt32LE(p)),
              type: buf.readUInt32LE(p + 4),
              bitOffset: kindFlag ? off & 0xffffff : off,
              bitSize: kindFlag ? off >>> 24 : 0,
            });
          }
          break;
        case Kind.ENUM:
          t.enumValues = [];
          for (let i = 0; i < vlen; i++, p += 8) t.enumValues.push({ name: str(buf.readUInt32LE(p)), value: buf.readInt32LE(p + 4) });
          break;
        case Kind.ENUM64:
          t.enumValues = [];
          for (let i = 0; i < vlen; i++, p += 12) {
            const v = (BigInt(buf.readUInt32LE(p + 8)) << 32n) | BigInt(buf.readUInt32LE(p + 4));
            t.enumValues.push({ name: str(buf.readUInt32LE(p)), value: v });
          }
          break;
        case Kind.FUNC_PROTO:
          p += 8 * vlen;
          break;
        case Kind.DATASEC:
          p += 12 * vlen;
          break;
        case Kind.PTR: case Kind.FWD: case Kind.TYPEDEF: case Kind.VOLATILE: case Kind.CONST:
        case Kind.RESTRICT: case Kind.FUNC: case Kind.FLOAT: case Kind.TYPE_TAG:
          break;
        default:
          throw new BtfFormatError(`unknown BTF kind ${kind} at type ${id}`);
      }
      btf.types[id] = t;
      if (t.name) {
        const list = btf.byName.get(t.name) ?? [];
        list.push(t);
        btf.byName.set(t.name, list);
      }
      id++;
    }
    return btf;
  }

  type(id: number): BtfType | undefined {
    return this.types[id];
  }

  find(name: string, kind?: Kind): BtfType | undefined {
    return this.byName.get(name)?.find((t) => kind === undefined || t.kind === kind);
  }

  /** Follow typedef/const/volatile/restrict/type_tag to the underlying type. */
  resolve(id: number): BtfType | undefined {
    let t = this.types[id];
    for (let guard = 0; t && guard < 64; guard++) {
      if (t.kind === Kind.TYPEDEF || t.kind === Kind.VOLATILE || t.kind === Kind.CONST || t.kind === Kind.RESTRICT || t.kind === Kind.TYPE_TAG) {
        t = this.types[t.sizeOrType];
      } else return t;
    }
    return t;
  }

  /** Size in bytes of a type id. */
  sizeOf(id: number): number {
    const t = this.resolve(id);
    if (!t) return 0;
    switch (t.kind) {
      case Kind.INT: case Kind.STRUCT: case Kind.UNION: case Kind.ENUM: case Kind.ENUM64: case Kind.FLOAT: case Kind.DATASEC:
        return t.sizeOrType;
      case Kind.PTR:
        return 8;
      case Kind.ARRAY:
        return t.array!.nelems * this.sizeOf(t.array!.type);
      default:
        return 0;
    }
  }

  /** Enumerator value by name (searches every enum). */
  enumValue(name: string): number | bigint | undefined {
    for (const t of this.types) {
      const v = t?.enumValues?.find((e) => e.name === name);
      if (v) return v.value;
    }
    return undefined;
  }
}
