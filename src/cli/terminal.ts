// Strings the sample chose (paths, argv, comm, socket names) reach the terminal in warnings, errors
// and trace lines. Control characters there would move the cursor, clear the screen or retitle the
// window, a \r or \n would let a fake 'verdict: benign' line overwrite or follow the real one, and
// bidi controls reorder what is read: all are shown as escapes, never acted on.

// C0 (\n and \t included: a message is one line), DEL, C1 (U+009B is CSI to some terminals),
// the bidi controls, and the Unicode line and paragraph separators.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// What JSON.stringify leaves raw of the above (it escapes C0 itself).
const UNSAFE_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const hex = (c: string, w: number) => c.charCodeAt(0).toString(16).padStart(w, '0');

/** `s` with every character that a terminal acts on shown as \xNN or \uNNNN. */
export function termSafe(s: unknown): string {
  return String(s ?? '').replace(UNSAFE, (c) => (c.charCodeAt(0) < 0x100 ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`));
}

/** JSON text (from JSON.stringify) with the characters it leaves raw escaped as \uNNNN: the same JSON value. */
export function termSafeJson(json: string): string {
  return json.replace(UNSAFE_JSON, (c) => `\\u${hex(c, 4)}`);
}
