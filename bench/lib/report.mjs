// bench/lib/report.mjs -- turns the raw records of a bench run into a table,
// JSON and an SVG chart. No dependencies; runs on Node >= 18.
//
//   node report.mjs --one RUN_DIR RECORD_JSON      one-line summary of a test
//   node report.mjs --report RUN_DIR [--json F] [--svg F]
//
// Goodput is always read from the receiver's side: end.sum_received (for UDP
// with -R, end.sum mixes the sender's packet count with the receiver's loss).
// For UDP, sum_received.packets is received + lost; packets actually
// delivered = sum_received.bytes / datagram length.
//
// CPU per packet (per forwarder): utime+stime of the forwarder process over
// the test, divided by the packets that forwarder moved, read from its TUN
// device counters (tx = read by the forwarder from the TUN, rx = written by
// it); the two forwarders' figures are averaged. This counts every packet
// including TCP ACKs. A second figure, CPU per delivered data packet, divides
// the mean forwarder CPU by the data packets that reached the receiver
// (TCP: bytes / (MTU - IP header - 32); UDP: delivered datagrams).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

const argv = process.argv.slice(2);

// ------------------------------------------------------------ per record
function parseRate(r) {
  if (r === undefined || r === '' || r === '0') return 0;
  const m = /^([\d.]+)\s*([kKmMgGtT]?)$/.exec(r);
  if (!m) return NaN;
  const mult = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 }[m[2].toLowerCase()];
  return Number(m[1]) * mult; // iperf3 -b uses decimal units
}

function analyse(runDir, rec) {
  const out = {
    label: rec.label, kind: rec.kind, variant: rec.variant || undefined,
    spec: rec.spec, proto: rec.proto, family: rec.family, rate: rec.rate || null,
    dir: rec.dir, run: rec.run, ok: false, error: null,
  };
  let j;
  try {
    j = JSON.parse(fs.readFileSync(path.join(runDir, rec.file), 'utf8'));
  } catch (e) {
    out.error = `iperf3 output unreadable (exit ${rec.rc}): ${e.message}`;
    return out;
  }
  if (j.error) {
    out.error = `iperf3: ${j.error}`;
    return out;
  }
  const recv = j.end?.sum_received;
  const sent = j.end?.sum_sent;
  if (!recv) {
    out.error = 'iperf3 JSON has no end.sum_received';
    return out;
  }
  out.ok = rec.rc === 0;
  if (rec.rc !== 0) out.error = `iperf3 exit ${rec.rc}`;
  out.seconds = recv.seconds;
  out.goodput_bps = recv.bits_per_second;
  out.received_bytes = recv.bytes;
  out.sent_bytes = sent?.bytes ?? null;
  const ipHdr = rec.family === 6 ? 40 : 20;
  if (rec.proto === 'udp') {
    const len = rec.udp_len;
    out.offered_bps = parseRate(rec.rate) || null; // null = flood
    out.sent_packets = sent?.packets ?? null;
    out.delivered_packets = len ? Math.round(recv.bytes / len) : recv.packets - recv.lost_packets;
    out.loss_pct = out.sent_packets ? 100 * (1 - out.delivered_packets / out.sent_packets) : null;
    out.sent_bps = sent?.bits_per_second ?? null;
  } else {
    out.retransmits = sent?.retransmits ?? null;
    out.delivered_packets = Math.round(recv.bytes / (rec.mtu - ipHdr - 32));
  }
  const wall = rec.wall_ns / 1e9;
  const tck = rec.clk_tck || 100;
  const fw = {};
  for (const side of ['a', 'b']) {
    const ticks = rec[`cpu_ticks_${side}`];
    const dev = rec[`dev_${side}`];
    if (ticks === null || ticks === undefined) continue;
    const cpuS = ticks / tck;
    const pkts = dev && dev.rx !== null && dev.tx !== null ? dev.rx + dev.tx : null;
    fw[side] = {
      cpu_s: cpuS,
      cpu_pct: (100 * cpuS) / wall,
      tun_packets: pkts,
      tun_written: dev?.rx ?? null,
      tun_read: dev?.tx ?? null,
      us_per_pkt: pkts ? (cpuS * 1e6) / pkts : null,
    };
  }
  if (fw.a || fw.b) {
    out.forwarders = fw;
    const per = [fw.a?.us_per_pkt, fw.b?.us_per_pkt].filter((x) => typeof x === 'number');
    out.cpu_us_per_pkt = per.length ? per.reduce((s, x) => s + x, 0) / per.length : null;
    const cpu = [fw.a?.cpu_s, fw.b?.cpu_s].filter((x) => typeof x === 'number');
    const meanCpu = cpu.reduce((s, x) => s + x, 0) / cpu.length;
    out.cpu_us_per_delivered_pkt = out.delivered_packets ? (meanCpu * 1e6) / out.delivered_packets : null;
  }
  // where packets were dropped: TUN queue (forwarder did not read in time)
  // and UDP receive/send buffer errors of each namespace (all its sockets)
  const n = (x) => (typeof x === 'number' ? x : null);
  out.drops = {
    tun_queue_a: n(rec.dev_a?.tx_dropped), tun_queue_b: n(rec.dev_b?.tx_dropped),
    udp_rcvbuf_a: n(rec.udp_a?.rcvbuf_errors), udp_rcvbuf_b: n(rec.udp_b?.rcvbuf_errors),
    udp_sndbuf_a: n(rec.udp_a?.sndbuf_errors), udp_sndbuf_b: n(rec.udp_b?.sndbuf_errors),
  };
  // Machine use during the run, from per-process times (exact: the kernel
  // scales them to the scheduler's runtime), as % of all cores over the wall
  // time. /proc/stat is kept raw only: its tick sampling loses ticks on this
  // VM kind (busy + idle adding up to half the wall time was seen).
  const capTicks = wall * tck * (rec.nproc || os.cpus().length);
  const cu = j.end?.cpu_utilization_percent;
  out.host = {
    iperf_cpu_pct_of_core: cu ? { client: cu.host_total, server: cu.remote_total } : null,
    kernel_threads_pct: rec.bg ? (100 * rec.bg.kernel_ticks) / capTicks : null,
    foreign_pct: rec.bg ? (100 * rec.bg.foreign_ticks) / capTicks : null,
    foreign_top: rec.bg?.foreign_top && rec.bg.foreign_top !== '-' ? rec.bg.foreign_top : null,
    proc_stat_ticks: rec.host_ticks ?? null,
  };
  if (out.host.foreign_pct !== null && out.host.foreign_pct > NOISY_PCT) out.noisy = true;
  if (rec.forwarders_alive === false) {
    out.ok = false;
    out.error = (out.error ? out.error + '; ' : '') + 'forwarder died';
  }
  return out;
}

// a test during which more than this share of the machine went to processes
// outside the test is flagged as noisy
const NOISY_PCT = 5;

const fmt = (x, d = 2) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '');
const gb = (bps) => fmt(bps / 1e9, 2);

if (argv[0] === '--one') {
  const runDir = argv[1];
  const rec = JSON.parse(argv[2]);
  const a = analyse(runDir, rec);
  if (!a.goodput_bps && a.error) {
    console.log(`FAILED: ${a.error}`);
    process.exit(0);
  }
  let s = `${gb(a.goodput_bps)} Gbit/s`;
  if (a.proto === 'udp') s += `  loss ${fmt(a.loss_pct, 1)}%`;
  else s += `  retr ${a.retransmits ?? ''}`;
  if (a.forwarders) {
    s += `  fwd CPU ${fmt(a.forwarders.a?.cpu_pct, 0)}%/${fmt(a.forwarders.b?.cpu_pct, 0)}%`;
    s += `  ${fmt(a.cpu_us_per_pkt, 2)} us/pkt`;
  }
  if (a.host?.kernel_threads_pct) s += `  kthreads ${fmt(a.host.kernel_threads_pct, 0)}%`;
  if (a.noisy) s += `  NOISY: ${fmt(a.host.foreign_pct, 0)}% of the machine used by other processes (${a.host.foreign_top})`;
  const d = a.drops ?? {};
  const tq = (d.tun_queue_a ?? 0) + (d.tun_queue_b ?? 0);
  const rb = (d.udp_rcvbuf_a ?? 0) + (d.udp_rcvbuf_b ?? 0);
  if (tq || rb) s += `  drops tunq ${tq} rcvbuf ${rb}`;
  if (a.error) s += `  (${a.error})`;
  console.log(s);
  process.exit(0);
}

// ------------------------------------------------------------ aggregate
function stats(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((p, q) => p - q);
  if (!v.length) return null;
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { median, min: v[0], max: v[v.length - 1], n: v.length };
}

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0].trim();
  } catch {
    return null;
  }
}

function machine(meta) {
  let cpuModel = os.cpus()[0]?.model ?? null;
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpuModel = m[1];
  } catch {}
  return {
    hostname: os.hostname(),
    nproc: os.cpus().length,
    kernel: os.release(),
    cpu_model: cpuModel,
    mem_total_gib: +(os.totalmem() / 2 ** 30).toFixed(1),
    iperf3: sh('iperf3', ['--version']),
    wireguard_go: sh(meta?.wireguard_go?.['wireguard-go']?.binary ?? 'wireguard-go', ['--version']),
    // trixie's 0.0.20231211 package prints v0.0.20230223, the last tag before its snapshot
    wireguard_go_2023: meta?.wireguard_go?.['wireguard-go-2023']?.binary ? sh(meta.wireguard_go['wireguard-go-2023'].binary, ['--version']) : null,
    cc: sh('cc', ['--version']),
    report_node: process.version,
    udptun_node: meta?.udptun_node_version ?? null,
  };
}

// Congestion controls in the order first measured (tcp4+bbr before tcp4+cubic); aggregate() fills it.
const ccOrder = [];
const specCc = (s) => s.split('@')[0].split('+')[1];
const specOrder = (s) => {
  const [t, r] = s.split('@');
  const base = { tcp4: 0, tcp6: 1, udp4: 2, udp6: 3 }[t.split('+')[0]] ?? 9;
  const cc = specCc(s);
  const rate = r === undefined ? (cc === undefined ? 0 : 1 + ccOrder.indexOf(cc)) : r === '0' ? 1e15 : parseRate(r);
  return base * 1e16 + rate;
};
const specName = (s) => s.replace('@0', '@flood');
const dirName = (d) => (d === 'rev' ? 'B->A (-R)' : 'A->B');

// Which C loop each udptun row is compared with. Runs from before meta.comparisons had
// udptun plain: every offload on against ceiling-c:offloads, all off against ceiling-c.
function comparisons(meta) {
  return meta.comparisons ?? {
    x_ceiling_c: { udptun: 'ceiling-c:offloads', 'udptun:no-offloads': 'ceiling-c' },
    x_ceiling_wg: {},
  };
}

// "wireguard" for the encrypted rows (wireguard-go, the encrypted C loop, udptun's
// WireGuard variants), "plain" for udptun's and the C loops' plain ones, else null.
function transportOfRow(label, meta) {
  if (label.startsWith('wireguard-go') || label === 'ceiling-c:wireguard') return 'wireguard';
  if (label.startsWith('ceiling-c')) return 'plain';
  const v = (meta.udptun_variants ?? []).find((x) => x.label === label);
  return v ? (v.transport ?? 'plain') : null;
}

function aggregate(analysed, meta) {
  for (const a of analysed) {
    const cc = specCc(a.spec);
    if (cc !== undefined && !ccOrder.includes(cc)) ccOrder.push(cc);
  }
  const groups = new Map();
  for (const a of analysed) {
    const key = `${a.label}|${a.spec}|${a.dir}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(a);
  }
  const rows = [];
  for (const [key, runs] of groups) {
    const [label, spec, dir] = key.split('|');
    const good = runs.filter((r) => typeof r.goodput_bps === 'number' && !r.error?.includes('forwarder died'));
    const r0 = runs[0];
    rows.push({
      label, kind: r0.kind, variant: r0.variant, spec, proto: r0.proto, family: r0.family,
      rate: r0.rate, offered_bps: r0.offered_bps ?? null, dir,
      runs: runs.length, failed_runs: runs.length - good.length,
      goodput_gbps: stats(good.map((r) => r.goodput_bps / 1e9)),
      cpu_us_per_pkt: stats(good.map((r) => r.cpu_us_per_pkt)),
      cpu_us_per_pkt_a: stats(good.map((r) => r.forwarders?.a?.us_per_pkt)),
      cpu_us_per_pkt_b: stats(good.map((r) => r.forwarders?.b?.us_per_pkt)),
      cpu_us_per_delivered_pkt: stats(good.map((r) => r.cpu_us_per_delivered_pkt)),
      cpu_pct_a: stats(good.map((r) => r.forwarders?.a?.cpu_pct)),
      cpu_pct_b: stats(good.map((r) => r.forwarders?.b?.cpu_pct)),
      loss_pct: stats(good.map((r) => r.loss_pct)),

      drops_tun_queue: stats(good.map((r) => (r.drops.tun_queue_a ?? 0) + (r.drops.tun_queue_b ?? 0))),
      drops_udp_rcvbuf: stats(good.map((r) => (r.drops.udp_rcvbuf_a ?? 0) + (r.drops.udp_rcvbuf_b ?? 0))),

      host_foreign_pct: stats(good.map((r) => r.host?.foreign_pct)),
      host_kernel_threads_pct: stats(good.map((r) => r.host?.kernel_threads_pct)),
      noisy_runs: runs.filter((r) => r.noisy).length,
      retransmits: stats(good.map((r) => r.retransmits)),
      errors: runs.filter((r) => r.error).map((r) => `run ${r.run}: ${r.error}`),
    });
  }
  // ratios (same sitting): to veth for the same test/direction (fixed-rate
  // UDP excluded: veth just carries the offered rate), to both wireguard-go releases, and
  // each udptun row to the C loop that makes its kernel calls (meta.comparisons).
  const find = (label, spec, dir) => rows.find((r) => r.label === label && r.spec === spec && r.dir === dir);
  const { x_ceiling_c: plainCeiling, x_ceiling_wg: wgCeiling } = comparisons(meta);
  const ratio = (g, other) => (other && g && other.goodput_gbps?.median ? g / other.goodput_gbps.median : null);
  for (const r of rows) {
    const g = r.goodput_gbps?.median;
    const fixedRate = r.proto === 'udp' && r.offered_bps;
    r.transport = transportOfRow(r.label, meta);
    r.x_veth = fixedRate ? null : ratio(g, find('veth', r.spec, r.dir));
    r.x_wireguard_go = ratio(g, find('wireguard-go', r.spec, r.dir));
    r.x_wireguard_go_2023 = ratio(g, find('wireguard-go-2023', r.spec, r.dir));
    r.x_ceiling_c = r.kind === 'udptun' && plainCeiling[r.label] ? ratio(g, find(plainCeiling[r.label], r.spec, r.dir)) : null;
    r.x_ceiling_wg = r.kind === 'udptun' && wgCeiling[r.label] ? ratio(g, find(wgCeiling[r.label], r.spec, r.dir)) : null;
    r.of_offered = fixedRate && g ? (g * 1e9) / r.offered_bps : null;
  }
  const labelOrder = [...new Set(analysed.map((a) => a.label))];
  rows.sort(
    (p, q) =>
      specOrder(p.spec) - specOrder(q.spec) ||
      (p.dir === q.dir ? 0 : p.dir === 'fwd' ? -1 : 1) ||
      labelOrder.indexOf(p.label) - labelOrder.indexOf(q.label),
  );
  return rows;
}

// ------------------------------------------------------------ table
function table(rows, meta, mach) {
  const head = ['scenario', 'Gbit/s (median)', 'min-max', 'x veth', 'x wg-go', 'x wg-go-2023', 'x ceil-c', 'x ceil-wg', 'us/pkt/fwd', 'us/dlv-pkt', 'fwd CPU% A/B', 'kthreads%', 'other%', 'loss%', 'retr'];
  const lines = [];
  lines.push(
    `udptun bench  ${meta.started ?? ''}  runs=${meta.runs} time=${meta.time}s  udp -w ${meta.udp_window ?? 'default'}  ` +
      `${mach.nproc} cores, ${mach.cpu_model}, kernel ${mach.kernel}`,
  );
  for (const { cc, reason } of meta.tcp_cc_skipped ?? []) {
    lines.push(`tcp+${cc} not measured: net.ipv4.tcp_congestion_control=${cc} cannot be set inside a network namespace on this host: ${reason}`);
  }
  let cur = '';
  let block = [];
  const flush = () => {
    if (!block.length) return;
    const w = head.map((h, i) => Math.max(h.length, ...block.map((b) => b[i].length)));
    lines.push('');
    lines.push(cur);
    lines.push(head.map((h, i) => h.padEnd(w[i])).join('  '));
    lines.push(w.map((x) => '-'.repeat(x)).join('  '));
    for (const b of block) lines.push(b.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  '));
    block = [];
  };
  for (const r of rows) {
    const title = `${specName(r.spec)}  ${dirName(r.dir)}` + (r.offered_bps ? `  (offered ${r.rate}bit/s)` : '');
    if (title !== cur) {
      flush();
      cur = title;
    }
    const g = r.goodput_gbps;
    block.push([
      r.label + (r.failed_runs ? ` (${r.failed_runs}/${r.runs} failed)` : ''),
      g ? fmt(g.median, 3) : 'FAILED',
      g ? `${fmt(g.min, 2)}-${fmt(g.max, 2)}` : '',
      r.x_veth ? fmt(r.x_veth, 2) : r.of_offered ? `${fmt(100 * r.of_offered, 0)}% off.` : '',
      r.x_wireguard_go && r.label !== 'wireguard-go' ? fmt(r.x_wireguard_go, 2) : '',
      r.x_wireguard_go_2023 && r.label !== 'wireguard-go-2023' ? fmt(r.x_wireguard_go_2023, 2) : '',
      r.x_ceiling_c ? fmt(r.x_ceiling_c, 2) : '',
      r.x_ceiling_wg ? fmt(r.x_ceiling_wg, 2) : '',
      fmt(r.cpu_us_per_pkt?.median, 2),
      fmt(r.cpu_us_per_delivered_pkt?.median, 2),
      r.cpu_pct_a ? `${fmt(r.cpu_pct_a.median, 0)}/${fmt(r.cpu_pct_b?.median, 0)}` : '',
      r.host_kernel_threads_pct ? fmt(r.host_kernel_threads_pct.median, 0) : '',
      r.host_foreign_pct ? fmt(r.host_foreign_pct.max, 0) + (r.noisy_runs ? '!' : '') : '',
      r.proto === 'udp' ? fmt(r.loss_pct?.median, 1) : '',
      r.proto === 'tcp' ? fmt(r.retransmits?.median, 0) : '',
    ]);
  }
  flush();
  const noisy = rows.reduce((n, r) => n + (r.noisy_runs ?? 0), 0);
  if (noisy) {
    lines.push('');
    lines.push(`WARNING: ${noisy} test run(s) had more than ${NOISY_PCT}% of the machine busy with other processes; rerun on a quiet machine.`);
  }
  lines.push('');
  lines.push(
    'Gbit/s: receiver-side goodput, median of runs. x veth / x wg-go (bookworm 0.0.20220316) / x wg-go-2023 (trixie 0.0.20231211): ratio of medians, same sitting ' +
      '(fixed-rate UDP shows % of offered instead of x veth). x ceil-c: a plain udptun row against the C loop with its kernel calls (ceiling-c:offloads, ceiling-c); ' +
      'x ceil-wg: a WireGuard udptun row against the encrypted C loop (ceiling-c:wireguard, udptun\'s own sealing and opening code).',
  );
  lines.push(
    'us/pkt/fwd: forwarder CPU (utime+stime) per packet it moved (TUN device counters, ACKs included; with TUN offloads a super-packet counts once, so read us/dlv-pkt), ' +
      'mean of A and B. us/dlv-pkt: mean forwarder CPU per delivered data packet. fwd CPU%: % of one core.',
  );
  lines.push(
    'kthreads%: kernel threads (ksoftirqd, kworkers) as % of the whole machine (all cores), median.',
  );
  lines.push(
    `other%: worst run's share of the machine used by processes outside the test (kernel threads excluded); '!' = over ${NOISY_PCT}%, results disturbed.`,
  );
  return lines.join('\n');
}

// ------------------------------------------------------------ svg
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const PALETTE = ['#7f7f7f', '#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#393b79', '#637939'];

function niceMax(x) {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

function panel({ rows, labels, cats, metric, title, unit, y0, width, height, colors, capFrom, offeredLine }) {
  const left = 70, right = 20, top = 40, bottom = 70;
  const pw = width - left - right, ph = height - top - bottom;
  const get = (label, cat) => rows.find((r) => r.label === label && `${r.spec}|${r.dir}` === cat);
  const vals = [];
  for (const c of cats) for (const l of labels) {
    const s = metric(get(l, c));
    if (s && !(capFrom && capFrom.includes(l))) vals.push(s.max);
  }
  const ymax = niceMax(Math.max(0, ...vals) * 1.1);
  const y = (v) => y0 + top + ph - (Math.min(v, ymax) / ymax) * ph;
  const out = [];
  out.push(`<text x="${left}" y="${y0 + 18}" font-size="14" font-weight="bold">${esc(title)}</text>`);
  for (let i = 0; i <= 5; i++) {
    const v = (ymax * i) / 5;
    out.push(`<line x1="${left}" x2="${left + pw}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">${+v.toFixed(3)}</text>`);
  }
  out.push(`<text transform="translate(16 ${y0 + top + ph / 2}) rotate(-90)" font-size="12" text-anchor="middle">${esc(unit)}</text>`);
  const gw = pw / cats.length;
  const bw = Math.min(22, (gw - 10) / labels.length);
  cats.forEach((c, ci) => {
    const gx = left + ci * gw + (gw - bw * labels.length) / 2;
    labels.forEach((l, li) => {
      const s = metric(get(l, c));
      if (!s) return;
      const x = gx + li * bw;
      const clipped = s.median > ymax;
      out.push(
        `<rect x="${x.toFixed(1)}" y="${y(s.median).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(y(0) - y(s.median)).toFixed(1)}" fill="${colors[l]}"><title>${esc(`${l} ${specName(c.split('|')[0])} ${c.split('|')[1]}: median ${fmt(s.median, 3)} (min ${fmt(s.min, 3)}, max ${fmt(s.max, 3)})`)}</title></rect>`,
      );
      const cx = x + (bw - 2) / 2;
      if (!clipped && s.max > s.min) {
        out.push(`<line x1="${cx}" x2="${cx}" y1="${y(s.min)}" y2="${y(s.max)}" stroke="#000" stroke-width="1"/>`);
        out.push(`<line x1="${cx - 3}" x2="${cx + 3}" y1="${y(s.min)}" y2="${y(s.min)}" stroke="#000"/>`);
        out.push(`<line x1="${cx - 3}" x2="${cx + 3}" y1="${y(s.max)}" y2="${y(s.max)}" stroke="#000"/>`);
      }
      if (clipped) {
        out.push(`<path d="M${x} ${y(ymax) + 8} l${bw - 2} -4 M${x} ${y(ymax) + 13} l${bw - 2} -4" stroke="#fff" stroke-width="2"/>`);
      }
      const label = fmt(s.median, s.median < 10 ? 2 : 1);
      if (clipped) {
        out.push(
          `<text transform="translate(${cx + 3} ${y(ymax) + 18}) rotate(-90)" font-size="9" fill="#fff" text-anchor="end">${label}</text>`,
        );
      } else {
        out.push(`<text transform="translate(${cx + 3} ${y(s.max) - 4}) rotate(-90)" font-size="9">${label}</text>`);
      }
    });
    const [spec, dir] = c.split('|');
    const offered = offeredLine ? rows.find((r) => `${r.spec}|${r.dir}` === c && r.offered_bps)?.offered_bps : null;
    if (offered && offered / 1e9 <= ymax) {
      const oy = y(offered / 1e9);
      out.push(`<line x1="${left + ci * gw + 4}" x2="${left + (ci + 1) * gw - 4}" y1="${oy}" y2="${oy}" stroke="#444" stroke-dasharray="4 3"><title>offered ${offered / 1e9} Gbit/s</title></line>`);
    }
    out.push(`<text x="${left + ci * gw + gw / 2}" y="${y0 + top + ph + 16}" font-size="11" text-anchor="middle">${esc(specName(spec))}</text>`);
    out.push(`<text x="${left + ci * gw + gw / 2}" y="${y0 + top + ph + 30}" font-size="11" text-anchor="middle">${dir === 'rev' ? 'B->A' : 'A->B'}</text>`);
  });
  out.push(`<line x1="${left}" x2="${left + pw}" y1="${y(0)}" y2="${y(0)}" stroke="#000"/>`);
  return out.join('\n');
}

function svg(rows, meta, mach) {
  const labels = [...new Set(rows.map((r) => r.label))];
  const colors = {};
  labels.forEach((l, i) => (colors[l] = PALETTE[i % PALETTE.length]));
  const cats = [...new Set(rows.map((r) => `${r.spec}|${r.dir}`))];
  const width = Math.max(700, 90 + cats.length * Math.max(60, labels.length * 22 + 14));
  const h1 = 380, h2 = 300;
  const fwdLabels = labels.filter((l) => rows.some((r) => r.label === l && r.cpu_us_per_pkt));
  // the kernel-only references (veth, vxlan) may dwarf the user-space tunnels
  const isReference = (l) => l.startsWith('veth') || l === 'vxlan';
  const tunnelLabels = labels.filter((l) => !isReference(l));
  const parts = [];
  parts.push(
    panel({
      rows, labels, cats, colors, y0: 40, width, height: h1,
      metric: (r) => r?.goodput_gbps,
      title: 'Goodput (receiver side), median with min-max; dashed: offered UDP rate',
      offeredLine: true,
      unit: 'Gbit/s',
      capFrom: tunnelLabels.length ? labels.filter(isReference) : null,
    }),
  );
  let total = 40 + h1;
  // a lower panel, drawn when it has something to show
  const lower = (opts) => {
    if (!opts.labels.length) return;
    parts.push(panel({ rows, cats, colors, width, height: h2, ...opts, y0: total }));
    total += h2;
  };
  lower({
    labels: fwdLabels,
    metric: (r) => r?.cpu_us_per_pkt,
    title: 'Forwarder CPU per packet moved (mean of both forwarders)',
    unit: 'us / packet',
  });
  // The WireGuard rows: udptun's against wireguard-go-2023 and the encrypted C loop (one
  // bar per udptun row and ratio), then every encrypted tunnel's CPU per delivered packet.
  const ratioRows = [];
  for (const r of rows) {
    if (r.kind !== 'udptun' || r.transport !== 'wireguard') continue;
    for (const [key, name] of [['x_wireguard_go_2023', 'x wg-go-2023'], ['x_ceiling_wg', 'x ceil-wg']]) {
      const x = r[key];
      if (x) ratioRows.push({ label: `${r.label} ${name}`, spec: r.spec, dir: r.dir, ratio: { median: x, min: x, max: x } });
    }
  }
  const ratioLabels = [...new Set(ratioRows.map((r) => r.label))];
  ratioLabels.forEach((l, i) => (colors[l] = PALETTE[(labels.length + i) % PALETTE.length]));
  lower({
    rows: ratioRows,
    labels: ratioLabels,
    metric: (r) => r?.ratio,
    title: "udptun's WireGuard rows against wireguard-go-2023 and the encrypted C loop (ratio of medians, 1 = level)",
    unit: 'x',
  });
  lower({
    labels: labels.filter((l) => rows.some((r) => r.label === l && r.transport === 'wireguard' && r.cpu_us_per_delivered_pkt)),
    metric: (r) => r?.cpu_us_per_delivered_pkt,
    title: 'WireGuard tunnels: forwarder CPU per delivered data packet (mean of both forwarders)',
    unit: 'us / delivered packet',
  });
  const perLine = Math.max(1, Math.floor((width - 70) / 190));
  const legendLabels = [...labels, ...ratioLabels];
  const legendY = total + 10;
  const legend = legendLabels
    .map((l, i) => {
      const x = 70 + (i % perLine) * 190, y = legendY + Math.floor(i / perLine) * 18;
      return `<rect x="${x}" y="${y}" width="12" height="12" fill="${colors[l]}"/><text x="${x + 18}" y="${y + 11}" font-size="12">${esc(l)}</text>`;
    })
    .join('\n');
  total += 22 + Math.ceil(legendLabels.length / perLine) * 18;
  const head = `udptun bench ${meta.started ?? ''}: runs=${meta.runs}, iperf3 -t ${meta.time}, UDP -w ${meta.udp_window ?? 'default'}; ${mach.nproc} cores ${mach.cpu_model}, kernel ${mach.kernel}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${total}" viewBox="0 0 ${width} ${total}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="20" font-size="13">${esc(head)}</text>`,
    `<text x="10" y="34" font-size="10" fill="#555">veth and vxlan bars are cut at the axis top (marked) when they dwarf the tunnels; hover a bar for its values</text>`,
    ...parts,
    legend,
    `</svg>`,
  ].join('\n');
}

// ------------------------------------------------------------ main
if (argv[0] === '--report') {
  const runDir = argv[1];
  const opt = (name) => {
    const i = argv.indexOf(name);
    return i > 0 ? argv[i + 1] : undefined;
  };
  let meta = {};
  try {
    meta = JSON.parse(fs.readFileSync(path.join(runDir, 'meta.json'), 'utf8'));
  } catch {}
  const recFile = path.join(runDir, 'records.ndjson');
  const records = fs.existsSync(recFile)
    ? fs.readFileSync(recFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
    : [];
  const analysed = records.map((r) => analyse(runDir, r));
  const rows = aggregate(analysed, meta);
  const mach = machine(meta);
  const result = {
    schema: 'udptun-bench/1',
    meta: { ...meta, finished: new Date().toISOString(), run_dir: path.resolve(runDir) },
    machine: mach,
    method: {
      goodput: 'iperf3 --json, client in A, server in B; receiver side end.sum_received.bits_per_second; rev = iperf3 -R (B sends)',
      udp: 'datagram length = MTU - 28 (IPv4); offered rate iperf3 -b (0 = flood); delivered packets = sum_received.bytes / length',
      cpu_us_per_pkt: 'forwarder utime+stime (/proc/PID/stat, all threads) / packets moved through its TUN device (rx+tx counters, ACKs included), mean of both forwarders',
      cpu_us_per_delivered_pkt: 'mean forwarder CPU / data packets delivered to the receiver (TCP: bytes/(MTU-IP header-32))',
      host: 'per-process /proc snapshots before and after each run, as % of all cores over the wall time: kernel_threads_pct (pid 2 and its children), foreign_pct (every process outside the test); runs with foreign_pct over 5% are flagged noisy (and retried with --retry-noisy). proc_stat_ticks: raw /proc/stat delta, unreliable on this VM kind',
      ratios: 'x_veth, x_wireguard_go (bookworm), x_wireguard_go_2023 (trixie), x_ceiling_c (plain udptun rows against their C loop), x_ceiling_wg (WireGuard udptun rows against ceiling-c:wireguard): ratio of medians measured in this same run, pairs in meta.comparisons; fixed-rate UDP has of_offered instead of x_veth',
    },
    results: rows,
    runs: analysed,
  };
  const text = table(rows, meta, mach);
  console.log(text);
  const jsonOut = opt('--json');
  if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify(result, null, 2) + '\n');
  const svgOut = opt('--svg');
  if (svgOut && rows.length) fs.writeFileSync(svgOut, svg(rows, meta, mach) + '\n');
  const textOut = opt('--text');
  if (textOut) fs.writeFileSync(textOut, text + '\n');
  process.exit(0);
}

console.error('usage: report.mjs --one RUN_DIR RECORD_JSON | --report RUN_DIR [--json F] [--svg F] [--text F]');
process.exit(2);
