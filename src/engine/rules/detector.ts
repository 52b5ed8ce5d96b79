// Runs a RuleSet over enriched events: rules indexed by event type, one finding per rule and
// process (evidence keeps the first matches), and the stateful extension's windows and sequences.
// Rules of source `session` see the connections the sandbox caught, after the last event; rules of
// source `dns` the domains the sample asked the DNS sinkhole about, after those.
import type { EnrichedEvent, ProcessInfo } from '../../semantics/types.js';
import type { SinkholeSession } from '../../sandbox/sessions.js';
import { dnsActivity, type DnsRecord } from '../../sandbox/dns.js';
import { messageViews } from '../../semantics/state.js';
import type { Detector, Evidence, Finding } from '../types.js';
import { evtType, type EvalCtx, type Scalar } from './fields.js';
import { compileOutput, type CompiledOutput } from './output.js';
import { openFlags } from './args.js';
import { WrittenFiles } from './written.js';
import type { CompiledRule, RuleSet } from './load.js';

const MAX_EVIDENCE = 8;
const MAX_FIELDS = 14;
const MAX_VALUE = 512;
const MAX_OUTPUT = 2048;
const NO_EVIDENCE: Evidence[] = [];
const WRITES_FILES = new Set(['open', 'openat', 'openat2', 'creat', 'rename', 'renameat', 'renameat2']);

interface Acc {
  rule: CompiledRule;
  pid: number;
  evidence: Evidence[];
  count: number;
  output: string;
  drained: boolean;
}

interface Index {
  byType: Map<string, CompiledRule[]>;
  any: CompiledRule[];
  /** Per event type: its rules, sequence rules whose steps can see it, and its dispatcher. */
  plans: Map<string, Plan>;
}
const indexCache = new WeakMap<RuleSet, Index>();

/** Calls `hit(rule, e)` for each rule of a bucket whose condition matches, in rule order. */
type Dispatch = (e: EnrichedEvent, x: EvalCtx, hit: (r: CompiledRule, e: EnrichedEvent) => void) => void;

interface Plan {
  dispatch: Dispatch;
  /** Sequence rules whose earlier steps can match this type (null stepTypes: every type). */
  seq: CompiledRule[];
  /** The type can write a file (proc.is_exe_upper_layer bookkeeping). */
  writes: boolean;
}

function indexOf(rs: RuleSet): Index {
  let ix = indexCache.get(rs);
  if (ix) return ix;
  ix = { byType: new Map(), any: [], plans: new Map() };
  for (const r of rs.rules) {
    if (r.source !== 'syscall') continue;
    if (!r.types) {
      ix.any.push(r);
      continue;
    }
    for (const t of r.types) {
      let l = ix.byType.get(t);
      if (!l) ix.byType.set(t, (l = []));
      l.push(r);
    }
  }
  // Rules matching any type also run on every typed bucket, in rule order.
  for (const [t, l] of ix.byType) ix.byType.set(t, [...l, ...ix.any]);
  indexCache.set(rs, ix);
  return ix;
}

const NOOP: Dispatch = () => {};

/** One generated function per bucket: each rule's predicate gets its own (monomorphic, and so
 *  inlinable) call site instead of one megamorphic `rule.pred(e, x)` in a loop. Predicates and
 *  rules are passed in as constants; only indexes and a sanitized name appear in the source. */
function dispatcher(type: string, rules: CompiledRule[]): Dispatch {
  if (rules.length === 0) return NOOP;
  const body = rules.map((_, i) => `if (P[${i}](e, x)) hit(R[${i}], e);`).join('\n');
  const fname = `dispatch_${type.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 60)}`;
  return new Function('P', 'R', `'use strict'; return function ${fname}(e, x, hit) {\n${body}\n};`)(rules.map((r) => r.pred), rules) as Dispatch;
}

function planOf(ix: Index, rs: RuleSet, t: string): Plan {
  let p = ix.plans.get(t);
  if (p) return p;
  const seq = rs.rules.filter((r) => r.source === 'syscall' && r.sequence && (!r.sequence.stepTypes || r.sequence.stepTypes.has(t)));
  p = { dispatch: dispatcher(t, ix.byType.get(t) ?? ix.any), seq, writes: WRITES_FILES.has(t) };
  ix.plans.set(t, p);
  return p;
}

function eventName(e: EnrichedEvent): string {
  if (e.session) return 'session';
  if (e.dns) return 'dns';
  return e.ev.type === 'syscall' ? e.ev.name : e.ev.type;
}

/** Connects remembered for the rules of source session: addresses and ports (and addresses), and
 *  connects in all (a scan makes millions; at most 1,000 sessions are caught). */
const MAX_CONNECT_KEYS = 65536;
const MAX_CONNECTS_KEPT = 100_000;
/** Connects kept per address and port: the Nth caught session there is matched with the Nth connect. */
const MAX_CONNECTS_PER_KEY = 64;

/** The process of a caught connection whose connect the capture did not show (the event was
 *  lost, or the connection was made without connect: TCP fast open, io_uring). */
const UNKNOWN_PROCESS: ProcessInfo = {
  pid: 0, ppid: 0, exe: '', name: '<NA>', argv: [], uid: -1, sid: 0, tty: 0, start: 0, end: null, exit: null, signal: null,
  parent: undefined, containerId: '', containerName: '',
};

function evidenceOf(rule: CompiledRule, e: EnrichedEvent, ctx: EvalCtx): Evidence {
  const fields: Record<string, Scalar> = {};
  let n = 0;
  for (const [name, def] of rule.fields) {
    if (n++ >= MAX_FIELDS) break;
    const v = def.get(e, ctx);
    // argv and paths come from the sample and can be huge; evidence keeps a readable head.
    fields[name] = typeof v === 'string' && v.length > MAX_VALUE ? `${v.slice(0, MAX_VALUE)}…` : v;
  }
  return { seq: e.ev.seq, pid: e.ev.pid, event: eventName(e), ts: e.ev.ts, fields };
}

const outputCache = new WeakMap<CompiledRule, CompiledOutput>();
function renderOutput(rule: CompiledRule, e: EnrichedEvent, ctx: EvalCtx): string {
  let out = outputCache.get(rule);
  if (!out) outputCache.set(rule, (out = compileOutput(rule.output)));
  const s = out.render(e, ctx);
  return s.length > MAX_OUTPUT ? `${s.slice(0, MAX_OUTPUT)}…` : s;
}

/** Matches of a threshold rule for one key: timestamps (count) or last-seen per value (distinct). */
interface Window {
  times: number[];
  seen: Map<string, { ts: number; e: EnrichedEvent }>;
  /** The first matches in the current window, kept as evidence if it fires. */
  first: EnrichedEvent[];
  fired: boolean;
}
interface SeqState {
  step: number;
  t0: number;
  evidence: Evidence[];
}

/** `dnsName`: the name an address was looked up by (fd.sip.name and its kin; see EvalCtx). */
export function createRuleDetector(ruleset: RuleSet, opts: { dnsName?: (address: string) => string | undefined } = {}): Detector {
  const ix = indexOf(ruleset);
  const ctx: EvalCtx = { written: new WrittenFiles(), cur: null, type: '', dnsName: opts.dnsName };
  const accs = new Map<CompiledRule, Map<number, Acc>>();
  const order: Acc[] = [];
  const windows = new Map<CompiledRule, Map<number, Window>>();
  const seqs = new Map<CompiledRule, Map<number, SeqState>>();
  const sessionRules = ruleset.rules.filter((r) => r.source === 'session');
  const dnsRules = ruleset.rules.filter((r) => r.source === 'dns');
  // the connects (UDP: the first send of each socket to each destination) the caught sessions are
  // matched with, for their process and descriptor
  const connects = new Map<string, { events: EnrichedEvent[]; used: number }>();
  const udpSockets = new Set<string>();
  let lastTs = 0;
  let kept = 0;
  const rememberConnect = (e: EnrichedEvent, t: string): void => {
    const fd = e.fd;
    if ((fd?.type !== 'ipv4' && fd?.type !== 'ipv6') || fd.rip === undefined || fd.rip.startsWith('127.') || fd.rip === '::1' || kept >= MAX_CONNECTS_KEPT) return;
    const udp = fd.l4proto === 'udp';
    if (t !== 'connect' && !udp) return;
    if (udp) {
      const socket = `${e.ev.pid}/${fd.num}/${fd.rip}:${fd.rport ?? ''}`;
      if (udpSockets.has(socket)) return;
      udpSockets.add(socket);
    }
    kept++;
    const transport = udp ? 'udp' : 'tcp';
    for (const key of [`${transport} ${fd.rip}:${fd.rport ?? ''}`, `${transport} ${fd.rip}`]) {
      let c = connects.get(key);
      if (!c) {
        if (connects.size >= MAX_CONNECT_KEYS) continue;
        connects.set(key, (c = { events: [], used: 0 }));
      }
      if (c.events.length < MAX_CONNECTS_PER_KEY) c.events.push(e);
    }
  };
  /** The connect of a caught session: the next one to its address and port not yet matched (the
   *  last when all were); without its port (a rootless run), the next one to its address. For UDP
   *  the first send of each socket to the destination stands for its connect. */
  const connectOf = (s: SinkholeSession): EnrichedEvent | undefined => {
    const transport = s.transport ?? 'tcp';
    const c = (s.port !== null ? connects.get(`${transport} ${s.address}:${s.port}`) : undefined) ?? connects.get(`${transport} ${s.address}`);
    if (!c) return undefined;
    return c.events[Math.min(c.used++, c.events.length - 1)];
  };
  const orphan = (s: SinkholeSession): EnrichedEvent => {
    const v6 = s.address.includes(':');
    return {
      ev: { type: 'syscall', seq: 0, ts: lastTs, pid: 0, tid: 0, abi: 'x86_64', nr: -1, name: 'connect', args: [], ret: null },
      proc: UNKNOWN_PROCESS, user: '', path: undefined, path2: undefined,
      fd: {
        num: -1, type: v6 ? 'ipv6' : 'ipv4', name: `->${v6 ? `[${s.address}]` : s.address}:${s.port ?? ''}`, l4proto: s.transport ?? 'tcp', role: 'client',
        rip: s.address, ...(s.port !== null ? { rport: s.port } : {}),
      },
    };
  };

  // Sequence rules: their earlier steps must see every event of the types they name.
  // (Each event type's plan lists the sequence rules whose steps can see it.)
  const plans = new Map<string, Plan>();

  const report = (rule: CompiledRule, e: EnrichedEvent, ev: Evidence[] | null): void => {
    let m = accs.get(rule);
    if (!m) accs.set(rule, (m = new Map()));
    const pid = rule.threshold?.by === 'sample' || rule.sequence?.by === 'sample' ? 0 : e.ev.pid;
    let a = m.get(pid);
    if (!a) {
      a = { rule, pid: e.ev.pid, evidence: [], count: 0, output: renderOutput(rule, e, ctx), drained: false };
      m.set(pid, a);
      order.push(a);
    }
    a.count++;
    if (ev) {
      for (const x of ev) if (a.evidence.length < MAX_EVIDENCE) a.evidence.push(x);
    } else if (a.evidence.length < MAX_EVIDENCE) a.evidence.push(evidenceOf(rule, e, ctx));
  };

  const onThreshold = (rule: CompiledRule, e: EnrichedEvent): void => {
    const t = rule.threshold!;
    let m = windows.get(rule);
    if (!m) windows.set(rule, (m = new Map()));
    const k = t.by === 'sample' ? 0 : e.ev.pid;
    let w = m.get(k);
    if (!w) m.set(k, (w = { times: [], seen: new Map(), first: [], fired: false }));
    if (w.fired) {
      report(rule, e, NO_EVIDENCE);
      return;
    }
    const now = e.ev.ts;
    let n: number;
    if (t.distinct) {
      const v = t.distinct.get(e, ctx);
      if (v === null) return;
      const key = String(v);
      const old = w.seen.get(key);
      if (old) {
        old.ts = now;
        return; // a value seen before adds nothing
      }
      w.seen.set(key, { ts: now, e });
      if (w.seen.size < t.count) {
        if (w.first.length < MAX_EVIDENCE) w.first.push(e);
        return;
      }
      // forEach rather than for-of: no [key, value] pair allocated per entry.
      const seen = w.seen;
      seen.forEach((x, kk) => {
        if (now - x.ts > t.withinNs) seen.delete(kk);
      });
      n = seen.size;
      if (n < t.count) {
        const first: EnrichedEvent[] = [];
        for (const x of seen.values()) {
          if (first.length >= MAX_EVIDENCE) break;
          first.push(x.e);
        }
        w.first = first;
        return;
      }
    } else {
      w.times.push(now);
      if (w.times.length > t.count) w.times.shift();
      if (w.first.length < MAX_EVIDENCE) w.first.push(e);
      n = w.times.length;
      if (n < t.count) return;
      if (now - w.times[0]! > t.withinNs) {
        w.first = [e];
        return;
      }
    }
    w.fired = true;
    report(rule, e, w.first.filter((x) => now - x.ev.ts <= t.withinNs).map((x) => evidenceOf(rule, x, ctx)).concat(evidenceOf(rule, e, ctx)).slice(-MAX_EVIDENCE));
    accs.get(rule)!.get(k)!.count = n;
    w.times = [];
    w.seen.clear();
    w.first = [];
  };

  const onSequenceStep = (rule: CompiledRule, e: EnrichedEvent): void => {
    const s = rule.sequence!;
    if (s.stepTypes && !s.stepTypes.has(ctx.type)) return;
    let m = seqs.get(rule);
    const k = s.by === 'sample' ? 0 : e.ev.pid;
    const st = m?.get(k);
    if (st && e.ev.ts - st.t0 > s.withinNs) m!.delete(k);
    const cur = m?.get(k);
    const step = cur ? cur.step : 0;
    if (step < s.steps.length && s.steps[step]!(e, ctx)) {
      if (!m) seqs.set(rule, (m = new Map()));
      if (!cur) m.set(k, { step: 1, t0: e.ev.ts, evidence: [evidenceOf(rule, e, ctx)] });
      else {
        cur.step++;
        cur.evidence.push(evidenceOf(rule, e, ctx));
      }
    }
  };

  const onSequenceFinal = (rule: CompiledRule, e: EnrichedEvent): void => {
    const s = rule.sequence!;
    const k = s.by === 'sample' ? 0 : e.ev.pid;
    const st = seqs.get(rule)?.get(k);
    if (!st || st.step < s.steps.length || e.ev.ts - st.t0 > s.withinNs) return;
    report(rule, e, [...st.evidence, evidenceOf(rule, e, ctx)]);
    seqs.get(rule)!.delete(k);
  };

  const hit = (r: CompiledRule, e: EnrichedEvent): void => {
    if (r.threshold) onThreshold(r, e);
    else if (r.sequence) onSequenceFinal(r, e);
    else report(r, e, null);
  };

  const toFinding = (a: Acc): Finding => {
    const f: Finding = {
      rule: a.rule.id,
      description: a.rule.description || a.rule.name,
      severity: a.rule.severity,
      attack: a.rule.attack,
      pid: a.pid,
      evidence: a.evidence,
      source: 'rule',
      output: a.output,
      count: a.count,
      confidence: a.rule.confidence,
      tags: a.rule.tags,
    };
    return f;
  };

  const pending = (): Finding[] => {
    const out: Finding[] = [];
    for (const a of order) {
      if (a.drained) continue;
      a.drained = true;
      out.push(toFinding(a));
    }
    return out;
  };

  return {
    name: 'rules',
    onEvent(e: EnrichedEvent): void {
      const ev = e.ev;
      const t = evtType(e);
      lastTs = ev.ts;
      if ((t === 'connect' || t === 'sendto' || t === 'sendmsg') && sessionRules.length > 0) rememberConnect(e, t);
      let plan = plans.get(t);
      if (plan === undefined) plans.set(t, (plan = planOf(ix, ruleset, t)));
      // Remember files written during the capture (proc.is_exe_upper_layer).
      if (plan.writes && ev.type === 'syscall' && ev.ret !== null && ev.ret >= 0) {
        const f = openFlags(ev);
        if (f !== null && (f & 3) !== 0) {
          const p = e.path ?? ev.path;
          if (p) ctx.written.add(p);
        } else if (ev.name === 'rename' || ev.name === 'renameat' || ev.name === 'renameat2') {
          const p = e.path2 ?? ev.path2;
          if (p) ctx.written.add(p);
        }
      }
      ctx.type = t;
      const seq = plan.seq;
      // a sendmmsg is judged once per destination of its messages, as that many sendtos
      const views = ev.type === 'syscall' && ev.addrs ? messageViews(e) : undefined;
      if (views === undefined) {
        ctx.cur = e;
        for (let i = 0; i < seq.length; i++) onSequenceStep(seq[i]!, e);
        plan.dispatch(e, ctx, hit);
        return;
      }
      for (const v of views) {
        ctx.cur = v;
        for (let i = 0; i < seq.length; i++) onSequenceStep(seq[i]!, v);
        plan.dispatch(v, ctx, hit);
      }
    },
    onSessions(sessions: readonly SinkholeSession[]): void {
      if (sessionRules.length === 0) return;
      for (const s of sessions) {
        const e: EnrichedEvent = { ...(connectOf(s) ?? orphan(s)), session: s };
        ctx.cur = e;
        ctx.type = 'session';
        for (const r of sessionRules) if (r.pred(e, ctx)) hit(r, e);
      }
      ctx.cur = null;
    },
    onDns(queries: readonly DnsRecord[]): void {
      if (dnsRules.length === 0) return;
      // which process asked is not known (the resolver's datagrams are not matched to the sample's sends)
      for (const a of dnsActivity(queries)) {
        const e: EnrichedEvent = {
          ev: { type: 'syscall', seq: 0, ts: lastTs, pid: 0, tid: 0, abi: 'x86_64', nr: -1, name: 'dns', args: [], ret: null },
          proc: UNKNOWN_PROCESS, user: '', path: undefined, path2: undefined, fd: undefined, dns: a,
        };
        ctx.cur = e;
        ctx.type = 'dns';
        for (const r of dnsRules) if (r.pred(e, ctx)) hit(r, e);
      }
      ctx.cur = null;
    },
    drain: pending,
    finish: pending,
  };
}
