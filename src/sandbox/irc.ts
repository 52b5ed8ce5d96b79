// IRC, for the connection catcher (sessions.ts). Linux bots (Tsunami/Kaiten, the Perl ShellBots,
// Outlaw) take their orders in an IRC channel: the bot registers (NICK, USER), waits for the
// server's welcome and the end of its message of the day, then JOINs its operator's channel, often
// with a key. Closed at its first line, such a bot shows only its nick; answered as a server, it
// names the channel and key, the indicators an analyst looks for, as Cuckoo's network analysis
// lists IRC messages. The client speaks first, so IRC is recognised on the catch-all by its first
// line (isIrcStart), on any port, in the clear or inside the catcher's TLS.
//
// Everything read is the sample's: lines are bounded (LineDialogue), fields cut and escaped before
// they are kept, and what is echoed back to the sample is stripped of control characters.
import { LineDialogue, clean } from './greetings.js';

/** What an IRC client said (each field escaped, at most 256 characters). */
export interface IrcSession {
  /** The nick it registered with (its first NICK). */
  nick?: string;
  /** USER's user name and real name. */
  user?: string;
  realname?: string;
  /** PASS: the server's password. */
  password?: string;
  /** The first CHANNELS channels it joined, with their keys. */
  channels: { name: string; key?: string }[];
  /** The first MESSAGES messages it sent (PRIVMSG, NOTICE): to whom, and the text. */
  messages: { command: 'PRIVMSG' | 'NOTICE'; target: string; text: string }[];
  /** Lines it sent in all. */
  lines: number;
}

const CHANNELS = 16;
const MESSAGES = 16;
/** The name the replies give the server. */
const SERVER = 'irc.example.test';

/** The connection's first line is IRC registration (PASS, NICK, USER, or a capability negotiation first). */
export function isIrcStart(buf: Buffer): boolean {
  const nl = buf.indexOf(0x0a);
  if (nl < 0) return false;
  return /^(?:PASS|NICK|USER) +\S|^CAP +LS\b/i.test(buf.subarray(0, Math.min(nl, 512)).toString('latin1'));
}

/** A token of the client's, as it may be sent back to it in a reply: no controls, no spaces, bounded. */
function echo(s: string): string {
  return s.replace(/[\x00-\x20\x7f]/g, '').slice(0, 64) || '*';
}

/** An IRC line's command and parameters (RFC 2812: a prefix dropped, the trailing one after ` :`). */
function parse(line: string): { command: string; params: string[] } {
  let rest = line.replace(/^:\S*\s*/, '');
  const params: string[] = [];
  let command = '';
  while (rest.length) {
    if (command && rest.startsWith(':')) { params.push(rest.slice(1)); break; }
    const sp = rest.indexOf(' ');
    const word = sp < 0 ? rest : rest.slice(0, sp);
    if (!command) command = word.toUpperCase(); else params.push(word);
    rest = sp < 0 ? '' : rest.slice(sp + 1).replace(/^ +/, '');
  }
  return { command, params };
}

/**
 * One IRC dialogue, as a server that welcomes any nick: registration is answered with the welcome
 * and an end of MOTD (what bots wait for before they join), PING with PONG, JOIN with the join and
 * the end of the names list. It ends at QUIT; otherwise the catcher closes it once the bot has
 * been idle for its idle time, and the bot, if it reconnects, is another session.
 */
export class IrcDialogue extends LineDialogue {
  readonly session: IrcSession = { channels: [], messages: [], lines: 0 };
  private welcomed = false;

  private get me(): string {
    return echo(this.session.nick ?? '*');
  }

  protected onLine(line: string, long: boolean): string {
    this.session.lines++;
    if (long) return '';
    const { command, params } = parse(line);
    const s = this.session;
    switch (command) {
      case 'PASS':
        if (params[0] !== undefined) s.password ??= clean(params[0]);
        return '';
      case 'NICK':
        if (params[0] === undefined) return `:${SERVER} 431 ${this.me} :No nickname given\r\n`;
        if (s.nick === undefined) {
          s.nick = clean(params[0]);
          return this.welcome();
        }
        return `:${this.me}!${echo(s.user ?? 'user')}@sandbox NICK :${echo(params[0])}\r\n`;
      case 'USER':
        if (s.user === undefined && params[0] !== undefined) {
          s.user = clean(params[0]);
          if (params[3] !== undefined) s.realname = clean(params[3]);
        }
        return this.welcome();
      case 'CAP':
        return (params[0] ?? '').toUpperCase() === 'LS' ? `:${SERVER} CAP * LS :\r\n` : '';
      case 'PING':
        return `:${SERVER} PONG ${SERVER} :${echo(params[0] ?? '')}\r\n`;
      case 'JOIN': {
        const names = (params[0] ?? '').split(',').filter((n) => n && n !== '0');
        const keys = (params[1] ?? '').split(',');
        let out = '';
        names.forEach((name, i) => {
          if (s.channels.length < CHANNELS) s.channels.push({ name: clean(name), ...(keys[i] ? { key: clean(keys[i]!) } : {}) });
          const c = echo(name);
          out += `:${this.me}!${echo(s.user ?? 'user')}@sandbox JOIN :${c}\r\n:${SERVER} 353 ${this.me} = ${c} :${this.me}\r\n:${SERVER} 366 ${this.me} ${c} :End of /NAMES list.\r\n`;
        });
        return out;
      }
      case 'PRIVMSG': case 'NOTICE':
        if (params[0] !== undefined && s.messages.length < MESSAGES) s.messages.push({ command, target: clean(params[0]), text: clean(params[1] ?? '') });
        return '';
      case 'QUIT':
        this.done = true;
        return 'ERROR :Closing Link\r\n';
      default:
        return '';
    }
  }

  /** Once both NICK and USER came: the welcome and an empty message of the day. */
  private welcome(): string {
    if (this.welcomed || this.session.nick === undefined || this.session.user === undefined) return '';
    this.welcomed = true;
    const n = this.me;
    return `:${SERVER} 001 ${n} :Welcome to the Internet Relay Network ${n}\r\n:${SERVER} 002 ${n} :Your host is ${SERVER}\r\n`
      + `:${SERVER} 375 ${n} :- ${SERVER} Message of the day -\r\n:${SERVER} 376 ${n} :End of /MOTD command.\r\n`;
  }
}
