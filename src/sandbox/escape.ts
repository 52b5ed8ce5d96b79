// How the sample's bytes are kept for the report: safe to print and to put in JSON or HTML.

/** Printable ASCII as it is, anything else \xNN (a newline \n, a carriage return \r, a backslash \\). */
export function escaped(b: Buffer): string {
  let s = '';
  for (const c of b) {
    if (c === 0x0a) s += '\\n';
    else if (c === 0x0d) s += '\\r';
    else if (c === 0x5c) s += '\\\\';
    else if (c >= 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return s;
}
