// A live status line on stderr: rewritten in place on a terminal, one line per change otherwise.
export interface ProgressLine {
  update(text: string): void;
  done(): void;
}

export function progressLine(stream: NodeJS.WriteStream, minIntervalMs = 200): ProgressLine {
  const tty = Boolean(stream.isTTY);
  let last = 0;
  let lastStage = '';
  let shown = false;
  return {
    update(text) {
      const now = Date.now();
      if (tty) {
        if (now - last < minIntervalMs) return;
        last = now;
        stream.write(`\r\x1b[K[sandtrace] ${text}`);
        shown = true;
      } else {
        const stage = text.split(/\s+/)[0] ?? '';
        if (stage === lastStage) return;
        lastStage = stage;
        stream.write(`[sandtrace] ${text}\n`);
      }
    },
    done() {
      if (tty && shown) stream.write('\r\x1b[K');
      shown = false;
    },
  };
}
