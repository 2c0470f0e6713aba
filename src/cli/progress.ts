/**
 * Progress on stderr for long CLI steps (loading, convert, make-test-model, train). On a terminal: one line redrawn
 * in place, `label [#######.......]  42% what`. Otherwise (a log file, a pipe): plain lines, no escape codes, one
 * per tenth of the work at most, so logs stay readable.
 */
export interface ProgressOptions {
  /** Where to write (default process.stderr). */
  readonly stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Print nothing at all. */
  readonly quiet?: boolean;
  /** Force terminal (true) or plain-line (false) output; default: the stream's isTTY. */
  readonly tty?: boolean;
}

export interface Progress {
  /** fraction in [0, 1]; `what` names the current piece (a tensor, a stage). */
  update(fraction: number, what?: string): void;
  /** A line of its own (a log message) without breaking the bar. */
  log(line: string): void;
  /** Ends the bar; `message` (e.g. "loaded in 2.1 s") replaces it, or the bar is erased when there is none. */
  done(message?: string): void;
}

const BAR = 24;

export function createProgress(label: string, o: ProgressOptions = {}): Progress {
  const stream = o.stream ?? process.stderr;
  const tty = o.tty ?? stream.isTTY === true;
  let lastDraw = 0;
  let lastTenth = -1;
  let shown = '';
  const write = (s: string) => {
    if (!o.quiet) stream.write(s);
  };
  const draw = (fraction: number, what: string) => {
    const f = Math.min(1, Math.max(0, fraction));
    const fill = Math.round(f * BAR);
    const pct = `${String(Math.floor(f * 100)).padStart(3)}%`;
    let line = `${label} [${'#'.repeat(fill)}${'.'.repeat(BAR - fill)}] ${pct}${what ? ` ${what}` : ''}`;
    const cols = stream.columns ?? 100;
    if (line.length > cols - 1) line = line.slice(0, cols - 1);
    shown = line;
    write(`\r${line}\x1b[K`);
  };
  let last = { fraction: 0, what: '' };
  return {
    update(fraction, what = '') {
      last = { fraction, what };
      if (tty) {
        const now = Date.now();
        if (now - lastDraw < 80 && fraction < 1) return; // at most ~12 redraws a second
        lastDraw = now;
        draw(fraction, what);
        return;
      }
      const tenth = Math.floor(Math.min(1, Math.max(0, fraction)) * 10);
      if (tenth === lastTenth) return;
      lastTenth = tenth;
      write(`${label}: ${tenth * 10}%${what ? ` ${what}` : ''}\n`);
    },
    log(line) {
      if (tty && shown) {
        write(`\r\x1b[K${line}\n`);
        draw(last.fraction, last.what);
      } else write(`${line}\n`);
    },
    done(message) {
      if (tty) write(message ? `\r${message}\x1b[K\n` : shown ? '\r\x1b[K' : '');
      else if (message) write(`${message}\n`);
      shown = '';
    },
  };
}
