// The body of an HTTP request the connection catcher took (sessions.ts): what a sample uploads in
// a POST or PUT, its stolen data as a rule. The catcher answers only once the body is whole (its
// Content-Length, or the last chunk of a chunked one), so that the sample sends all of it, and
// keeps its size, SHA-256 (an indicator to look the upload up by) and first bytes. Read as it comes,
// never kept whole: at most BODY_READ_MAX bytes are read, the rest of the request is not waited for.
import { createHash, type Hash } from 'node:crypto';
import { escaped } from './escape.js';

/** What a request's body was: bytes (de-chunked), their SHA-256 and the first ones, escaped. */
export interface HttpBody {
  bytes: number;
  sha256: string;
  preview: string;
  /** The sample stopped sending, or went past BODY_READ_MAX, before the body's end: `bytes` and `sha256` are of what came. */
  incomplete?: true;
}

/** Body bytes read per request; a larger body is cut here (and the request answered). */
export const BODY_READ_MAX = 32 << 20;
/** Bytes of the body kept for its preview. */
const PREVIEW = 256;
/** Bytes of one chunk-size line (with extensions) or trailer line read. */
const LINE_MAX = 1024;

/** The value of a request header in a whole head (`head` up to its empty line), else undefined. */
function header(head: string, name: string): string | undefined {
  const l = head.split('\r\n').slice(1).find((h) => h.slice(0, name.length + 1).toLowerCase() === `${name}:`);
  return l?.slice(name.length + 1).trim();
}

/**
 * The body of one request, fed the bytes that follow its head as they come. `done` once the body
 * is whole (or BODY_READ_MAX was read, or chunked framing broke: the catcher then answers with
 * what it has). A request with neither Content-Length nor chunked transfer has no body
 * (`HttpBodyReader.of` gives undefined).
 */
export class HttpBodyReader {
  done = false;
  /** The client waits for `100 Continue` before it sends the body (`Expect: 100-continue`, curl's way with larger bodies). */
  expectsContinue = false;
  private bytes = 0;
  private readonly hash: Hash = createHash('sha256');
  private preview: Buffer = Buffer.alloc(0);
  /** Content-Length: bytes still to come. Chunked: where the framing is, and the current chunk's bytes to come. */
  private remaining: number;
  private state: 'length' | 'size' | 'data' | 'data-end' | 'trailer';
  private line = '';
  /** The body ended before its end: the sample stopped, went past BODY_READ_MAX, or broke the chunked framing. */
  private cut = false;

  private constructor(length: number | undefined) {
    this.state = length === undefined ? 'size' : 'length';
    this.remaining = length ?? 0;
  }

  /** The reader for the request whose whole head is `head` (up to and without its empty line); undefined when it has no body. */
  static of(head: Buffer): HttpBodyReader | undefined {
    const text = head.toString('latin1');
    const length = header(text, 'content-length');
    const reader = /(^|,)\s*chunked\s*$/i.test(header(text, 'transfer-encoding') ?? '') ? new HttpBodyReader(undefined)
      : length !== undefined && /^\d{1,15}$/.test(length) && Number(length) > 0 ? new HttpBodyReader(Number(length)) : undefined;
    if (reader) reader.expectsContinue = /^100-continue$/i.test(header(text, 'expect') ?? '');
    return reader;
  }

  feed(chunk: Buffer): void {
    let at = 0;
    while (!this.done && at < chunk.length) {
      if (this.state === 'length' || this.state === 'data') {
        const take = Math.min(this.remaining, chunk.length - at, BODY_READ_MAX - this.bytes);
        this.take(chunk.subarray(at, at + take));
        at += take;
        this.remaining -= take;
        if (this.bytes >= BODY_READ_MAX && this.remaining > 0) { this.done = true; this.cut = true; }
        else if (this.remaining === 0) {
          if (this.state === 'length') this.done = true;
          else this.state = 'data-end';
        }
        continue;
      }
      // chunked framing: a hex size line, its data, CRLF; size 0 ends the data, then trailer lines to an empty one
      const nl = chunk.indexOf(0x0a, at);
      const piece = chunk.subarray(at, nl < 0 ? chunk.length : nl).toString('latin1');
      at = nl < 0 ? chunk.length : nl + 1;
      if (this.line.length + piece.length > LINE_MAX) { this.done = true; this.cut = true; break; }
      this.line += piece;
      if (nl < 0) break;
      const line = this.line.replace(/\r$/, '');
      this.line = '';
      if (this.state === 'data-end') {
        if (line !== '') { this.done = true; this.cut = true; } // no CRLF after the chunk's data: framing broken
        else this.state = 'size';
      } else if (this.state === 'size') {
        const size = /^([0-9a-fA-F]{1,8})\s*(;.*)?$/.exec(line);
        if (!size) { this.done = true; this.cut = true; }
        else if ((this.remaining = parseInt(size[1]!, 16)) === 0) this.state = 'trailer';
        else this.state = 'data';
      } else if (line === '') this.done = true; // the empty line after the trailer
    }
  }

  /** The body so far: whole when `done` and the framing held, else marked incomplete. */
  result(): HttpBody {
    return {
      bytes: this.bytes, sha256: this.hash.copy().digest('hex'), preview: escaped(this.preview),
      ...(this.done && !this.cut ? {} : { incomplete: true as const }),
    };
  }

  private take(b: Buffer): void {
    if (b.length === 0) return;
    this.bytes += b.length;
    this.hash.update(b);
    if (this.preview.length < PREVIEW) this.preview = Buffer.concat([this.preview, b.subarray(0, PREVIEW - this.preview.length)]);
  }
}
