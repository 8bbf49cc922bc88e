// bench/lib/profile-report.mjs -- the analysis half of bench/profile.sh (no dependencies).
//
//   perf script -F comm,pid,tid,ip,sym,dso -i perf.data |
//     node profile-report.mjs --fold PASS_DIR --pid a=PID --pid b=PID [--v8log a=FILE --v8log b=FILE] [--root REPO]
//       -> PASS_DIR/a.folded, PASS_DIR/b.folded (one line per distinct stack: thread;root..leaf count)
//   node profile-report.mjs --report RUN_DIR [--strict] [--no-flamegraph]
//       -> RUN_DIR/report.txt, RUN_DIR/summary.json, PASS_DIR/{a,b}.svg; a summary on stdout
//
// Frames in the folded files are "symbol [kind]", kind one of: k (kernel), jit (V8 code from
// the --perf-basic-prof map), node (the node binary: V8, libuv, Node, embedded builtins),
// addon (udptun.node), a library's file name (libc.so.6 ...), ? (unknown), or inl: a function
// TurboFan/Maglev inlined into the jit frame before it. Inlined frames come from V8's code log
// (--log-code --log-source-position): for each optimised code object it lists the source
// position of every instruction range with its inlining id, and the inlined functions, so a
// sampled pc resolves to the chain of functions inlined at that point (the perf map alone only
// names the outer function, and V8's jitdump names lines of inlined code with the outer file).
// Every figure is a share of samples; with perf's cpu-clock event a sample is a slice of
// on-CPU time of one thread of the process.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { parseFolded, renderFlamegraph } from "./flamegraph.mjs";

// ------------------------------------------------------------------ frames

/** Shorten a symbol for display and for the folded files (one line per stack). */
export function shortSym(sym, root) {
  let s = sym.replace(/;/g, ",");
  // JS from the perf map: "JS:*'pull file:///repo/dist/src/pool/buffer-pool.js:57:9"
  if (root) s = s.split(`file://${root}/`).join("");
  s = s.replace(/file:\/\/\/\S*?\/node_modules\//g, "node_modules/");
  s = s.replace(/file:\/\/\/\S*?\/dist\/src\//g, "dist/src/");
  // C++: collapse template arguments, keep the outer name
  if (s.includes("<")) {
    let out = "";
    let depth = 0;
    for (const ch of s) {
      if (ch === "<") {
        if (depth === 0) out += "<..>";
        depth++;
      } else if (ch === ">" && depth > 0) depth--;
      else if (depth === 0) out += ch;
    }
    s = out;
  }
  if (s.length > 200) s = s.slice(0, 197) + "...";
  return s;
}

function kindOf(ip, dso) {
  if (ip.length >= 16 && /^ffff/i.test(ip)) return "k";
  if (/^\[[\w.-]+\]$/.test(dso) && !["[unknown]", "[vdso]", "[vsyscall]", "[heap]", "[stack]"].includes(dso)) return "k";
  if (/\/perf-\d+\.map$/.test(dso) || /^\/\/anon/.test(dso) || /jitted-\d+/.test(dso)) return "jit";
  if (dso.endsWith("/udptun.node")) return "addon";
  if (/\/bin\/node$/.test(dso)) return "node";
  if (dso === "[unknown]" || dso === "") return "?";
  return path.basename(dso);
}

/** Split a folded frame "symbol [kind]" into its parts. */
export function splitFrame(f) {
  const i = f.lastIndexOf(" [");
  if (i < 0 || !f.endsWith("]")) return { sym: f, kind: "?" };
  return { sym: f.slice(0, i), kind: f.slice(i + 2, -1) };
}

const SOFTIRQ_RE = /^(handle_softirqs|__do_softirq|do_softirq_own_stack)$/;
const SCHED_RE = /^(__schedule|schedule)$/;
const SYSCALL_RE = /^(?:__x64_sys_|__ia32_sys_|__do_sys_)(\w+)$/;
// OpenSSL is linked into the node binary: its symbols would count as V8's runtime. The
// addon's seal/open reach it through EVP (addon frames on the stack); node:crypto (the
// handshake) through Node's C++.
const OPENSSL_RE = /^(_?ChaCha20|_?chacha20|_?Poly1305|_?poly1305|__poly1305|EVP_|evp_|CRYPTO_|OPENSSL_|ossl_|OSSL_|x25519|X25519|blake2|BLAKE2|sha\d|SHA\d|bn_|BN_|RAND_|ERR_)/;
const GC_RE =
  /v8::internal::(Heap::(CollectGarbage|PerformGarbageCollection|CollectAllGarbage|StartIncrementalMarking|FinalizeIncrementalMarking|Scavenge|MarkCompact)|ScavengerCollector|Scavenger::|MarkCompactCollector|MinorMarkSweepCollector|MinorMS|ConcurrentMarking|Sweeper|IncrementalMarking|MarkingVisitor|MarkingBarrier|ArrayBufferSweeper|GCTracer|MemoryReducer|ScavengeJob|MinorGCJob|PretenuringHandler|EvacuationVerifier|Evacuator)|cppgc::internal::/;
const COMPILER_RE =
  /v8::internal::(compiler::|maglev::|baseline::|OptimizingCompileDispatcher|Compiler::|interpreter::BytecodeGenerator|Parser|parsing::|ConcurrentMaglevCompiler)/;
export const POOL_RE = /\/pool\/(buffer-pool|pooled-buffer)\.(ts|js):\d+/;
const UDPTUN_JS_RE = /(^|\s)(dist\/)?src\/|(^|\s)(scripts|bench)\//;

/** Categories, in report order, with flame graph colours. */
export const CATEGORIES = [
  ["kernel: syscalls", "hsl(28,90%,62%)"],
  ["kernel: scheduler", "hsl(40,85%,60%)"],
  ["kernel: softirq", "hsl(10,85%,65%)"],
  ["addon (C)", "hsl(0,75%,55%)"],
  ["OpenSSL (addon)", "hsl(345,70%,60%)"],
  ["OpenSSL (node:crypto)", "hsl(355,55%,72%)"],
  ["JS: udptun", "hsl(120,55%,55%)"],
  ["JS: node core & deps", "hsl(150,45%,62%)"],
  ["V8 builtins & stubs", "hsl(190,60%,62%)"],
  ["Node & N-API (C++)", "hsl(50,85%,58%)"],
  ["V8 runtime (C++)", "hsl(60,75%,52%)"],
  ["V8 JIT compiler", "hsl(270,40%,70%)"],
  ["GC", "hsl(300,55%,65%)"],
  ["libuv", "hsl(80,60%,55%)"],
  ["libc & other libs", "hsl(220,55%,70%)"],
  ["unknown", "hsl(0,0%,75%)"],
];
const CAT_COLOR = Object.fromEntries(CATEGORIES);

/** Category of one frame on its own (for colours; no stack context). */
function frameCategory(sym, kind) {
  if (kind === "k") return "kernel: syscalls";
  if (kind === "addon") return "addon (C)";
  if (kind === "jit" || kind === "inl") {
    if (kind === "inl" || sym.startsWith("JS:") || sym.startsWith("Script:") || sym.startsWith("Eval:")) {
      return UDPTUN_JS_RE.test(sym.replace(/^\S+\s/, " ")) ? "JS: udptun" : "JS: node core & deps";
    }
    return "V8 builtins & stubs";
  }
  if (kind === "node") {
    if (sym.startsWith("Builtins_")) return "V8 builtins & stubs";
    if (OPENSSL_RE.test(sym)) return "OpenSSL (addon)";
    if (GC_RE.test(sym)) return "GC";
    if (COMPILER_RE.test(sym)) return "V8 JIT compiler";
    if (/^uv_|^uv__/.test(sym)) return "libuv";
    if (/^(node::|napi_|v8impl::)/.test(sym)) return "Node & N-API (C++)";
    return "V8 runtime (C++)";
  }
  if (kind === "?") return "unknown";
  return "libc & other libs";
}

/** Category of a sample: its leaf frame, with the stack deciding softirq, GC and JIT compiler. */
function sampleCategory(frames) {
  const leaf = frames[frames.length - 1];
  if (leaf.kind === "k") {
    if (frames.some((f) => f.kind === "k" && SOFTIRQ_RE.test(f.sym))) return "kernel: softirq";
    if (frames.some((f) => f.kind === "k" && SCHED_RE.test(f.sym))) return "kernel: scheduler";
    return "kernel: syscalls";
  }
  if (leaf.kind === "node" && OPENSSL_RE.test(leaf.sym)) {
    return frames.some((f) => f.kind === "addon") ? "OpenSSL (addon)" : "OpenSSL (node:crypto)";
  }
  if (frames.some((f) => f.kind === "node" && GC_RE.test(f.sym))) return "GC";
  if (frames.some((f) => f.kind === "node" && COMPILER_RE.test(f.sym))) return "V8 JIT compiler";
  return frameCategory(leaf.sym, leaf.kind);
}

/** "JS:*'pull dist/src/pool/buffer-pool.js:57:9" -> { name: "pull", tier: "*", where: "buffer-pool.js:57" } */
function jsParts(sym) {
  const m = /^(?:(?:JS|Script|Eval):([~^+*]?)'?|\(inlined\) )(.*?)\s(\S+?):(\d+)(?::\d+)?$/.exec(sym);
  if (!m) return null;
  return { tier: m[1] ?? "inlined", name: m[2] || "(anonymous)", file: m[3], where: `${path.basename(m[3])}:${m[4]}` };
}

// ------------------------------------------------------------------ V8 code log (inlining)

/**
 * Reads a V8 log written with --log-code --log-source-position and returns a lookup
 * (pc, perfSymbol, isReturnAddress) -> names of the functions inlined at pc, outermost first
 * ([] when pc is the function's own code, null when the code object is unknown).
 *
 *   code-creation,JS,<kind>,<time>,<addr>,<size>,<name>,<sfi>,<state>
 *   code-source-info,<addr>,<script>,<start>,<end>,<C<off>O<pos>[I<inl>]...>,<F<fn>O<pos>[I<parent>]...>,<S<sfi>...>
 *   code-move,<from>,<to>    sfi-move,<from>,<to>
 */
export function readV8Log(file) {
  const unesc = (t) => t.replace(/\\x([0-9a-fA-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
  const codes = [];
  const lastAt = new Map();
  const sfiName = new Map();
  for (const line of readFileSync(file, "latin1").split("\n")) {
    if (line.startsWith("code-creation,")) {
      const f = line.split(",");
      const c = { start: parseInt(f[4], 16), size: Number(f[5]), name: unesc(f[6] ?? ""), state: f[8] ?? "", type: f[1], raw: null, parsed: null, fns: null };
      if (!Number.isFinite(c.start)) continue;
      codes.push(c);
      lastAt.set(c.start, c);
      if (f[1] === "JS" && f[7]) sfiName.set(f[7], c.name);
    } else if (line.startsWith("code-source-info,")) {
      const f = line.split(",");
      const c = lastAt.get(parseInt(f[1], 16));
      if (!c) continue;
      c.raw = [f[5] ?? "", f[6] ?? ""];
      // resolve inlined functions now: SFI addresses may be reused after a move
      c.fns = [...(f[7] ?? "").matchAll(/S(0x[0-9a-f]+)/g)].map((m) => sfiName.get(m[1]) ?? `? (sfi ${m[1]})`);
    } else if (line.startsWith("code-move,")) {
      const f = line.split(",");
      const c = lastAt.get(parseInt(f[1], 16));
      if (!c) continue;
      const moved = { ...c, start: parseInt(f[2], 16) };
      codes.push(moved);
      lastAt.set(moved.start, moved);
    } else if (line.startsWith("sfi-move,")) {
      const f = line.split(",");
      const n = sfiName.get(f[1]);
      if (n !== undefined) sfiName.set(f[2], n);
    }
  }
  // index: code objects sorted by start (stable: later log entries after earlier ones)
  const order = codes.map((c, i) => [c, i]).sort((x, y) => x[0].start - y[0].start || x[1] - y[1]).map((x) => x[0]);
  const maxSize = codes.reduce((m, c) => Math.max(m, c.size), 0);
  const parse = (c) => {
    if (c.parsed) return c.parsed;
    const pos = [...c.raw[0].matchAll(/C(\d+)O(\d+)(?:I(\d+))?/g)].map((m) => [Number(m[1]), m[3] === undefined ? -1 : Number(m[3])]);
    const inl = [...c.raw[1].matchAll(/F(\d+)O(\d+)(?:I(\d+))?/g)].map((m) => [Number(m[1]), m[3] === undefined ? -1 : Number(m[3])]);
    return (c.parsed = { pos, inl });
  };
  return {
    codes: codes.length,
    lookup(pc, perfSym, isReturn) {
      // the code objects that cover pc; the perf map's name decides between reused addresses
      let lo = 0;
      let hi = order.length - 1;
      let idx = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (order[mid].start <= pc) {
          idx = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      let best = null;
      for (let i = idx; i >= 0 && order[i].start > pc - maxSize - 1; i--) {
        const c = order[i];
        if (pc >= c.start + c.size) continue;
        if (`JS:${c.state}${c.name}` === perfSym) {
          best = c;
          break;
        }
      }
      if (!best) return null;
      if (!best.raw) return [];
      const { pos, inl } = parse(best);
      const off = pc - best.start - (isReturn ? 1 : 0);
      let id = -1;
      for (let i = 0; i < pos.length && pos[i][0] <= off; i++) id = pos[i][1];
      const chain = [];
      for (let guard = 0; id >= 0 && id < inl.length && guard < 64; guard++) {
        chain.unshift(best.fns[inl[id][0]] ?? "?");
        id = inl[id][1];
      }
      return chain;
    },
  };
}

// ------------------------------------------------------------------ fold (perf script -> folded)

async function fold(dir, pids, v8logs, root) {
  const bySide = new Map(); // side -> Map(stack -> n)
  const sideOf = new Map(Object.entries(pids).map(([side, pid]) => [String(pid), side]));
  const logs = new Map();
  for (const [side, file] of Object.entries(v8logs)) {
    if (!existsSync(file)) {
      console.error(`profile-report: ${file} missing: no inlined frames for ${side}`);
      continue;
    }
    logs.set(side, readV8Log(file));
  }
  const stats = { other: 0, jitFrames: 0, resolved: 0, unresolved: 0, inlinedFrames: 0 };
  let cur = null;
  const flush = () => {
    if (!cur) return;
    const side = sideOf.get(cur.pid);
    if (!side) stats.other++;
    else {
      const log = logs.get(side);
      const out = [];
      // perf lists the leaf first; build root first, expanding jit frames into their inlinees
      for (let i = cur.frames.length - 1; i >= 0; i--) {
        const fr = cur.frames[i];
        out.push(`${shortSym(fr.sym, root)} [${fr.kind}]`);
        if (fr.kind === "jit" && fr.sym.startsWith("JS:") && log) {
          stats.jitFrames++;
          const chain = log.lookup(fr.ip, fr.sym, i > 0);
          if (chain === null) stats.unresolved++;
          else {
            stats.resolved++;
            stats.inlinedFrames += chain.length;
            for (const name of chain) out.push(`(inlined) ${shortSym(name, root)} [inl]`);
          }
        }
      }
      const key = [cur.comm.replace(/[; ]/g, "_"), ...out].join(";");
      let m = bySide.get(side);
      if (!m) bySide.set(side, (m = new Map()));
      m.set(key, (m.get(key) ?? 0) + 1);
    }
    cur = null;
  };
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (line === "") {
      flush();
      continue;
    }
    if (line[0] !== " " && line[0] !== "\t") {
      flush();
      const m = /^(.*?)\s+(\d+)\/(\d+)\s*(?:\d+\s*)?(?:[\w:-]+:\s*)?$/.exec(line);
      if (m) cur = { comm: m[1].trim() || "?", pid: m[2], frames: [] };
      continue;
    }
    if (!cur) continue;
    const m = /^\s*([0-9a-f]+)\s+(.*?)\s+\(([^()]*)\)\s*$/.exec(line);
    if (!m) continue;
    let sym = m[2].replace(/\+0x[0-9a-f]+$/, "");
    if (sym === "" || sym === "[unknown]") sym = "[unknown]";
    cur.frames.push({ ip: parseInt(m[1], 16), sym, kind: kindOf(m[1], m[3]) });
  }
  flush();
  for (const side of Object.keys(pids)) {
    const m = bySide.get(side) ?? new Map();
    const lines = [...m].sort((x, y) => y[1] - x[1]).map(([k, n]) => `${k} ${n}`);
    writeFileSync(path.join(dir, `${side}.folded`), lines.join("\n") + (lines.length ? "\n" : ""));
  }
  writeFileSync(path.join(dir, "fold.json"), JSON.stringify(stats) + "\n");
  if (stats.other) console.error(`profile-report: ${stats.other} samples of other pids ignored`);
}

// ------------------------------------------------------------------ analyse one folded file

/** The syscall a kernel sample belongs to: its __x64_sys_* frame, else the libc wrapper that entered. */
function syscallOf(frames) {
  for (const f of frames) {
    const m = f.kind === "k" && SYSCALL_RE.exec(f.sym);
    if (m) return m[1];
  }
  const k = frames.findIndex((f) => f.kind === "k");
  if (k > 0 && /^entry_SYSCALL/.test(frames[k].sym)) return frames[k - 1].sym.replace(/^(__GI_)?_*(libc_)?/, "");
  return k >= 0 && /^asm_|irq/.test(frames[k].sym) ? "(interrupt)" : "(other)";
}

const enteredBySyscall = (frames) => {
  const k = frames.findIndex((f) => f.kind === "k");
  return k >= 0 && /^entry_SYSCALL/.test(frames[k].sym);
};

const isPoolFrame = (f) => (f.kind === "jit" || f.kind === "inl") && POOL_RE.test(f.sym);

function analyse(stacks) {
  const r = {
    total: 0,
    cats: Object.fromEntries(CATEGORIES.map(([c]) => [c, 0])),
    syscalls: { "kernel: syscalls": new Map(), "kernel: scheduler": new Map() },
    threads: new Map(),
    self: new Map(),
    jsIncl: new Map(),
    pool: { self: 0, incl: 0, mapSelf: 0, byFn: new Map() },
  };
  for (const [stack, n] of stacks) {
    const parts = stack.split(";");
    const thread = parts[0];
    const frames = parts.slice(1).map(splitFrame);
    if (frames.length === 0) continue;
    r.total += n;
    r.threads.set(thread, (r.threads.get(thread) ?? 0) + n);
    const cat = sampleCategory(frames);
    r.cats[cat] += n;
    const sc = r.syscalls[cat];
    if (sc) {
      const name = syscallOf(frames);
      sc.set(name, (sc.get(name) ?? 0) + n);
    }
    const leaf = frames[frames.length - 1];
    const key = `${leaf.sym} [${leaf.kind}]`;
    const e = r.self.get(key) ?? { n: 0, cat };
    e.n += n;
    r.self.set(key, e);
    // inclusive time of udptun JS functions (each function once per sample), pool frames
    const seen = new Set();
    let inPool = false;
    for (const f of frames) {
      if (f.kind !== "jit" && f.kind !== "inl") continue;
      const p = jsParts(f.sym);
      if (!p) continue;
      if (isPoolFrame(f)) inPool = true;
      if (!UDPTUN_JS_RE.test(" " + p.file)) continue;
      const fk = `${p.name} ${p.where}`;
      if (seen.has(fk)) continue;
      seen.add(fk);
      r.jsIncl.set(fk, (r.jsIncl.get(fk) ?? 0) + n);
    }
    // callees: what pool code called. Kernel time counts only when entered by a syscall (pool
    // code makes none); an interrupt or softirq that lands while pool code runs is not its work.
    if (inPool && !(leaf.kind === "k" && !enteredBySyscall(frames))) r.pool.incl += n;
    if (isPoolFrame(leaf)) {
      r.pool.self += n;
      const p = jsParts(leaf.sym);
      const fk = p ? `${p.name}${leaf.kind === "inl" ? " (inlined)" : ""}` : leaf.sym;
      r.pool.byFn.set(fk, (r.pool.byFn.get(fk) ?? 0) + n);
    }
    // what `perf report` alone shows: the leaf without the inlined frames
    let j = frames.length - 1;
    while (j > 0 && frames[j].kind === "inl") j--;
    if (frames[j].kind === "jit" && POOL_RE.test(frames[j].sym)) r.pool.mapSelf += n;
  }
  return r;
}

// ------------------------------------------------------------------ cpuprofile (V8 --cpu-prof)

function analyseCpuprofile(file) {
  const prof = JSON.parse(readFileSync(file, "utf8"));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const hits = new Map();
  if (Array.isArray(prof.samples) && prof.samples.length) for (const s of prof.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
  else for (const n of prof.nodes) if (n.hitCount) hits.set(n.id, n.hitCount);
  const isPool = (n) => POOL_RE.test(`${n.callFrame.url}:${n.callFrame.lineNumber + 1}`);
  let total = 0;
  let idle = 0;
  let poolSelf = 0;
  let poolIncl = 0;
  const self = new Map();
  for (const [id, n] of hits) {
    const node = byId.get(id);
    const cf = node.callFrame;
    total += n;
    if (cf.functionName === "(idle)") {
      idle += n;
      continue;
    }
    const url = cf.url ? shortSym(cf.url, null).replace(/^file:\/\//, "") : "";
    const key = `${cf.functionName || "(anonymous)"}${url ? ` ${url}:${cf.lineNumber + 1}` : ""}`;
    self.set(key, (self.get(key) ?? 0) + n);
    if (isPool(node)) poolSelf += n;
    for (let a = id; a !== undefined; a = parent.get(a)) {
      if (isPool(byId.get(a))) {
        poolIncl += n;
        break;
      }
    }
  }
  return { total, idle, busy: total - idle, poolSelf, poolIncl, self };
}

// ------------------------------------------------------------------ report

const pct = (n, d) => (d > 0 ? (100 * n) / d : 0);
/** 95% interval (Wilson) of a share n/d, in %. */
function ci95(n, d) {
  if (!d) return [0, 0];
  const z = 1.96;
  const p = n / d;
  const den = 1 + (z * z) / d;
  const mid = (p + (z * z) / (2 * d)) / den;
  const half = (z * Math.sqrt((p * (1 - p)) / d + (z * z) / (4 * d * d))) / den;
  return [100 * Math.max(0, mid - half), 100 * Math.min(1, mid + half)];
}
const fmtPct = (n, d) => `${pct(n, d).toFixed(pct(n, d) < 10 ? 2 : 1)}%`;
const pad = (s, w) => String(s).padEnd(w);
const lpad = (s, w) => String(s).padStart(w);
const readJson = (f) => JSON.parse(readFileSync(f, "utf8"));

function iperfSummary(file) {
  try {
    const j = readJson(file);
    if (j.error) return { error: j.error };
    const rx = j.end?.sum_received?.bits_per_second;
    const retr = j.end?.sum_sent?.retransmits;
    return { gbps: rx / 1e9, retransmits: retr };
  } catch (e) {
    return { error: String(e.message ?? e) };
  }
}

const LEGEND = [
  ["kernel", CAT_COLOR["kernel: syscalls"]],
  ["addon C", CAT_COLOR["addon (C)"]],
  ["OpenSSL", CAT_COLOR["OpenSSL (addon)"]],
  ["JS udptun", CAT_COLOR["JS: udptun"]],
  ["JS other", CAT_COLOR["JS: node core & deps"]],
  ["pool", "hsl(330,90%,55%)"],
  ["V8 builtins", CAT_COLOR["V8 builtins & stubs"]],
  ["Node/N-API", CAT_COLOR["Node & N-API (C++)"]],
  ["V8 C++", CAT_COLOR["V8 runtime (C++)"]],
  ["GC", CAT_COLOR["GC"]],
  ["libuv", CAT_COLOR["libuv"]],
  ["libc", CAT_COLOR["libc & other libs"]],
];
const flameColor = (frame) => {
  const { sym, kind } = splitFrame(frame);
  if ((kind === "jit" || kind === "inl") && POOL_RE.test(sym)) return "hsl(330,90%,55%)";
  return CAT_COLOR[frameCategory(sym, kind)] ?? "#ccc";
};

/** The pass whose figures decide: V8 as in production, inlined code attributed. */
const VERDICT_PASS = "production";

function report(runDir, opts) {
  const meta = readJson(path.join(runDir, "meta.json"));
  const target = meta.target_pct ?? 1;
  const lines = [];
  const say = (s = "") => lines.push(s);
  const summary = { meta, target_pct: target, passes: [] };
  const sender = meta.sender ?? "a";
  const role = (side) =>
    side === sender ? "sender side: data TUN->UDP, ACKs UDP->TUN" : "receiver side: data UDP->TUN, ACKs TUN->UDP";

  say(`udptun profile  ${meta.started}  (prefix ${meta.prefix}; ${meta.seconds} s after ${meta.warmup} s warm-up; perf ${meta.event} at ${meta.freq} Hz, -g frame pointers)`);
  say(`machine: ${meta.nproc} CPUs (${meta.cpu_model}), kernel ${meta.kernel}, node ${meta.node_version}, ${meta.perf_version}; udptun ${meta.git}`);
  say(`traffic: iperf3 TCP ${meta.iperf_args ? `(${meta.iperf_args}) ` : ""}client in ${meta.prefix}-a -> server in ${meta.prefix}-b through the tunnel`);
  say(`pool functions: JS functions of src/pool/buffer-pool.ts and src/pool/pooled-buffer.ts (run from dist/, so *.js),`);
  say(`  standalone or inlined into their callers (inlined frames resolved through V8's code log).`);
  say(`a sample is ~${(1000 / meta.freq).toFixed(2)} ms on a CPU of one thread of a udptun process; shares are of all of that process's samples.`);
  say();

  let verdictFig = null;
  for (const pass of meta.passes) {
    const pdir = path.join(runDir, pass);
    if (!existsSync(path.join(pdir, "pass.json"))) {
      say(`== pass "${pass}": did not run to the end (no pass.json)`);
      say();
      continue;
    }
    const pj = readJson(path.join(pdir, "pass.json"));
    const ps = { name: pass, node_flags: pj.node_flags, perf: pj.perf, sides: {} };
    summary.passes.push(ps);
    say(`== pass "${pass}": node ${pj.node_flags}`);
    say(`   ${pj.description}`);
    const ip = iperfSummary(path.join(pdir, "iperf.json"));
    ps.iperf = ip;
    const wall = pj.wall_ns / 1e9;
    const foreignPct = pct(pj.bg_foreign_ticks, wall * pj.clk_tck * meta.nproc);
    ps.other_processes_pct = +foreignPct.toFixed(1);
    say(
      `   iperf3: ${ip.error ? `error: ${ip.error}` : `${ip.gbps.toFixed(2)} Gbit/s received, ${ip.retransmits ?? "?"} retransmits`}` +
        `; other processes used ${foreignPct.toFixed(1)}% of the machine during the window${foreignPct >= 5 ? ` (${pj.bg_top}): figures disturbed` : ""}`,
    );
    if (!pj.alive) say(`   WARNING: a udptun process died during the pass`);

    if (!pj.perf) {
      // V8 cpuprofile pass
      let busy = 0;
      let poolSelf = 0;
      let poolIncl = 0;
      for (const side of ["a", "b"]) {
        const f = path.join(pdir, `${side}.cpuprofile`);
        if (!existsSync(f)) {
          say(`   ${side}: no ${side}.cpuprofile written`);
          continue;
        }
        const c = analyseCpuprofile(f);
        busy += c.busy;
        poolSelf += c.poolSelf;
        poolIncl += c.poolIncl;
        ps.sides[side] = { samples: c.total, busy: c.busy, pool_self: c.poolSelf, pool_incl: c.poolIncl };
        say(`-- ${side}: ${path.relative(runDir, f)}: ${c.total} samples of the main thread, ${c.busy} not idle`);
        say(`   top 10 by self samples (share of non-idle samples; a native call's time, syscalls included, is its JS caller's):`);
        for (const [k, n] of [...c.self].sort((x, y) => y[1] - x[1]).slice(0, 10)) say(`   ${lpad(fmtPct(n, c.busy), 7)} ${lpad(n, 6)}  ${k}`);
        say(`   pool functions: ${fmtPct(c.poolSelf, c.busy)} self (${c.poolSelf} of ${c.busy}), ${fmtPct(c.poolIncl, c.busy)} with callees`);
      }
      say(`   pool (cpuprofile, both ends): ${fmtPct(poolSelf, busy)} of non-idle samples (${poolSelf} of ${busy}); V8's profiler counts`);
      say(`   inlined functions as their callers' (only standalone pool code shows): for DevTools, not for the verdict.`);
      ps.pool = { self: poolSelf, incl: poolIncl, total: busy };
      say();
      continue;
    }

    let fj = null;
    try {
      fj = readJson(path.join(pdir, "fold.json"));
    } catch {
      /* older run */
    }
    if (fj) {
      say(
        `   JS frames resolved through V8's code log: ${fj.resolved} of ${fj.jitFrames}` +
          `${fj.jitFrames && fj.resolved < fj.jitFrames ? " (the rest: no inlined frames)" : ""}; ${fj.inlinedFrames} inlined frames added`,
      );
    }
    let all = 0;
    let poolSelf = 0;
    let poolIncl = 0;
    let poolMap = 0;
    for (const side of ["a", "b"]) {
      const f = path.join(pdir, `${side}.folded`);
      const stacks = existsSync(f) ? parseFolded(readFileSync(f, "utf8")) : new Map();
      const r = analyse(stacks);
      all += r.total;
      poolSelf += r.pool.self;
      poolIncl += r.pool.incl;
      poolMap += r.pool.mapSelf;
      const cpuS = pj[`cpu_ticks_${side}`] / pj.clk_tck;
      const sampledS = r.total / meta.freq;
      const s = {
        pid: pj[`pid_${side}`],
        role: role(side),
        samples: r.total,
        cpu_seconds: +cpuS.toFixed(2),
        cpu_pct_of_core: +pct(cpuS, wall).toFixed(1),
        categories: Object.fromEntries(Object.entries(r.cats).map(([c, n]) => [c, { samples: n, pct: +pct(n, r.total).toFixed(2) }])),
        syscalls: Object.fromEntries(Object.entries(r.syscalls).map(([c, m]) => [c, Object.fromEntries([...m].sort((x, y) => y[1] - x[1]))])),
        threads: Object.fromEntries(r.threads),
        top: [...r.self].sort((x, y) => y[1].n - x[1].n).slice(0, 25).map(([sym, e]) => ({ sym, category: e.cat, samples: e.n, pct: +pct(e.n, r.total).toFixed(2) })),
        js_inclusive: [...r.jsIncl].sort((x, y) => y[1] - x[1]).slice(0, 15).map(([fn, n]) => ({ fn, samples: n, pct: +pct(n, r.total).toFixed(2) })),
        pool: {
          self: r.pool.self,
          incl: r.pool.incl,
          perf_map_only: r.pool.mapSelf,
          pct_self: +pct(r.pool.self, r.total).toFixed(3),
          pct_incl: +pct(r.pool.incl, r.total).toFixed(3),
          by_function: Object.fromEntries([...r.pool.byFn].sort((x, y) => y[1] - x[1])),
        },
      };
      ps.sides[side] = s;
      say(`-- ${side}: udptun pid ${s.pid} (${s.role})`);
      say(`   ${r.total} samples (~${sampledS.toFixed(2)} s on CPU; /proc: ${cpuS.toFixed(2)} s = ${s.cpu_pct_of_core}% of one core over ${wall.toFixed(1)} s)`);
      if (r.total === 0) {
        say("   no samples");
        continue;
      }
      say(`   where the samples are (self: the sampled frame, inlined frames resolved):`);
      for (const [c] of CATEGORIES) {
        const n = r.cats[c];
        if (!n) continue;
        let extra = "";
        const sc = r.syscalls[c];
        if (sc) extra = "   " + [...sc].sort((x, y) => y[1] - x[1]).slice(0, 5).map(([k, v]) => `${k} ${fmtPct(v, r.total)}`).join(", ");
        say(`     ${pad(c, 22)} ${lpad(fmtPct(n, r.total), 6)} ${lpad(n, 6)}${extra}`);
      }
      say(`   threads: ${[...r.threads].sort((x, y) => y[1] - x[1]).map(([t, n]) => `${t} ${fmtPct(n, r.total)}`).join(", ")}`);
      say(`   top 15 symbols by self samples:`);
      for (const t of s.top.slice(0, 15)) say(`   ${lpad(fmtPct(t.samples, r.total), 6)} ${lpad(t.samples, 6)}  ${pad(t.category, 20)} ${t.sym}`);
      if (s.js_inclusive.length) {
        say(`   udptun JS functions by inclusive samples (the function, what is inlined into it, and what it calls, syscalls included):`);
        for (const t of s.js_inclusive.slice(0, 10)) say(`   ${lpad(fmtPct(t.samples, r.total), 6)} ${lpad(t.samples, 6)}  ${t.fn}`);
      }
      const byFn = [...r.pool.byFn].sort((x, y) => y[1] - x[1]).map(([k, n]) => `${k} ${n}`).join(", ");
      say(
        `   pool functions: ${fmtPct(r.pool.self, r.total)} self (${r.pool.self} of ${r.total}${byFn ? `: ${byFn}` : ""}), ` +
          `${fmtPct(r.pool.incl, r.total)} with callees; perf map alone: ${fmtPct(r.pool.mapSelf, r.total)}`,
      );
    }
    ps.pool = {
      self: poolSelf,
      incl: poolIncl,
      perf_map_only: poolMap,
      total: all,
      pct_self: +pct(poolSelf, all).toFixed(3),
      pct_incl: +pct(poolIncl, all).toFixed(3),
    };
    say(`   pool work (both ends): ${fmtPct(poolSelf, all)} of samples (${poolSelf} of ${all}) self, ${fmtPct(poolIncl, all)} with callees`);
    say(`   (counting only frames the perf map names, as plain \`perf report\` would: ${fmtPct(poolMap, all)}, ${poolMap} samples)`);
    if (all > 0 && (pass === VERDICT_PASS || (!verdictFig && !meta.passes.includes(VERDICT_PASS)))) {
      verdictFig = { pass, self: poolSelf, incl: poolIncl, total: all, resolved: fj ? fj.resolved === fj.jitFrames : false };
    }
    say();
  }

  say(`== buffer pool vs the ${target}% target`);
  let verdict = "NONE";
  if (!verdictFig) {
    say("   no perf samples: no verdict");
  } else {
    const v = verdictFig;
    const selfPct = pct(v.self, v.total);
    const inclPct = pct(v.incl, v.total);
    verdict = inclPct < target ? "PASS" : "FAIL";
    const ci = ci95(v.incl, v.total);
    const close = ci[0] < target && ci[1] >= target;
    say(`   pool work: ${selfPct.toFixed(2)}% of samples (${v.self} of ${v.total}) self, ${inclPct.toFixed(2)}% with callees  [pass ${v.pass}]`);
    say(
      `   ${verdict}: ${inclPct.toFixed(2)}% ${verdict === "PASS" ? "<" : ">="} ${target}% (the figure with callees decides; it includes the self figure)` +
        `; 95% sampling interval ${ci[0].toFixed(2)}-${ci[1].toFixed(2)}%${close ? ": too close to call from one run, repeat or sample longer (--seconds)" : ""}`,
    );
    if (!v.resolved) say(`   note: not every JS frame was resolved through V8's code log; pool code inlined there is not counted`);
    const other = summary.passes.filter((p) => p.perf && p.name !== v.pass && p.pool);
    for (const p of other) {
      say(`   for comparison, pass ${p.name}: ${pct(p.pool.self, p.pool.total).toFixed(2)}% self, ${pct(p.pool.incl, p.pool.total).toFixed(2)}% with callees (not the verdict: its JIT is not production's)`);
    }
    summary.verdict = {
      result: verdict, pass: v.pass, pct_self: selfPct, pct_incl: inclPct, ci95_incl: ci, close_call: close,
      self: v.self, incl: v.incl, of: v.total,
    };
  }
  const text = lines.join("\n") + "\n";
  writeFileSync(path.join(runDir, "report.txt"), text);
  writeFileSync(path.join(runDir, "summary.json"), JSON.stringify(summary, null, 2) + "\n");

  if (opts.flamegraph) {
    for (const ps of summary.passes) {
      if (!ps.perf) continue;
      for (const side of ["a", "b"]) {
        const f = path.join(runDir, ps.name, `${side}.folded`);
        if (!existsSync(f)) continue;
        const stacks = parseFolded(readFileSync(f, "utf8"));
        let n = 0;
        for (const v of stacks.values()) n += v;
        if (n === 0) continue;
        const svg = renderFlamegraph(stacks, {
          title: `udptun ${side} (${role(side)}), pass ${ps.name}`,
          subtitle: `${n} samples, perf ${meta.event} ${meta.freq} Hz, ${meta.started}; node ${ps.node_flags}`,
          colorOf: flameColor,
          legend: LEGEND,
        });
        writeFileSync(path.join(runDir, ps.name, `${side}.svg`), svg);
      }
    }
  }
  return { verdict, summary };
}

function printSummary(runDir, res) {
  const { summary } = res;
  const out = [];
  const main = summary.passes.find((p) => p.perf && p.name === summary.verdict?.pass) ?? summary.passes.find((p) => p.perf);
  if (main) {
    for (const side of ["a", "b"]) {
      const s = main.sides[side];
      if (!s || !s.samples) continue;
      out.push(`${side}: udptun pid ${s.pid}, ${s.role}; ${s.samples} samples, ${s.cpu_pct_of_core}% of a core (pass ${main.name})`);
      const cats = Object.entries(s.categories).filter(([, v]) => v.pct >= 0.5).map(([c, v]) => `${c} ${v.pct}%`).join(", ");
      out.push(`  ${cats}`);
      out.push(`  top 10 by self samples:`);
      for (const t of s.top.slice(0, 10)) out.push(`  ${lpad(t.pct.toFixed(2) + "%", 7)}  ${pad(t.category, 20)} ${t.sym}`);
      out.push(`  pool functions: ${s.pool.pct_self.toFixed(2)}% self (${s.pool.self} of ${s.samples}), ${s.pool.pct_incl.toFixed(2)}% with callees`);
    }
    out.push("");
  }
  for (const ps of summary.passes) {
    if (!ps.perf || !ps.pool) continue;
    out.push(`pool work (${ps.name}): ${pct(ps.pool.self, ps.pool.total).toFixed(2)}% of samples (${ps.pool.self} of ${ps.pool.total}) self, ${pct(ps.pool.incl, ps.pool.total).toFixed(2)}% with callees`);
  }
  if (summary.verdict) {
    const v = summary.verdict;
    out.push(
      `${v.result}: pool work ${v.pct_incl.toFixed(2)}% ${v.result === "PASS" ? "<" : ">="} ${summary.target_pct}% of samples ` +
        `(pass ${v.pass}, with callees; 95% interval ${v.ci95_incl[0].toFixed(2)}-${v.ci95_incl[1].toFixed(2)}%${v.close_call ? ", too close to call from one run" : ""})`,
    );
  } else out.push("no verdict: no perf samples");
  out.push(`report: ${path.join(runDir, "report.txt")}`);
  process.stdout.write(out.join("\n") + "\n");
}

// ------------------------------------------------------------------ CLI

const argv = process.argv.slice(2);
const arg = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
if (argv.includes("--fold")) {
  const dir = arg("--fold");
  const pids = {};
  const v8logs = {};
  argv.forEach((a, i) => {
    if (a === "--pid" || a === "--v8log") {
      const v = argv[i + 1];
      const j = v.indexOf("=");
      (a === "--pid" ? pids : v8logs)[v.slice(0, j)] = v.slice(j + 1);
    }
  });
  await fold(dir, pids, v8logs, arg("--root"));
} else if (argv.includes("--report")) {
  const runDir = path.resolve(arg("--report"));
  if (!existsSync(path.join(runDir, "meta.json"))) {
    console.error(`profile-report: ${runDir}/meta.json not found`);
    process.exit(1);
  }
  const res = report(runDir, { flamegraph: !argv.includes("--no-flamegraph") });
  printSummary(runDir, res);
  if (res.verdict === "NONE") process.exit(1);
  if (res.verdict === "FAIL" && argv.includes("--strict")) process.exit(3);
} else {
  console.error("usage: profile-report.mjs --fold DIR --pid a=PID --pid b=PID [--v8log a=FILE --v8log b=FILE] [--root REPO] < perf-script-output\n" +
    "       profile-report.mjs --report RUN_DIR [--strict] [--no-flamegraph]");
  process.exit(2);
}
