// bench/lib/flamegraph.mjs -- folded stacks -> a self-contained flame graph SVG (no dependencies).
//
//   node bench/lib/flamegraph.mjs IN.folded [TITLE] > OUT.svg
//   import { renderFlamegraph } from "./flamegraph.mjs"
//
// Folded stacks: one line per distinct stack, frames root first separated by ";", then a
// space and the sample count (the format of Brendan Gregg's stackcollapse scripts). Frames
// narrower than minPct of the total are left out (their samples still count in their parent).
// Hovering a frame shows its name, samples and share (SVG <title>); click zooms into it,
// click the bottom bar ("all") to zoom out.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

/** Parse folded text into a Map<stack, count>. */
export function parseFolded(text) {
  const stacks = new Map();
  for (const line of text.split("\n")) {
    const i = line.lastIndexOf(" ");
    if (i <= 0) continue;
    const n = Number(line.slice(i + 1));
    if (!Number.isFinite(n) || n <= 0) continue;
    const k = line.slice(0, i);
    stacks.set(k, (stacks.get(k) ?? 0) + n);
  }
  return stacks;
}

function defaultColor(name) {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return `hsl(${20 + (h % 40)}, 85%, ${55 + (h % 15)}%)`;
}

/**
 * @param {Map<string, number>} stacks folded stacks
 * @param {{title?: string, subtitle?: string, width?: number, minPct?: number,
 *          colorOf?: (frame: string) => string, legend?: Array<[string, string]>}} opts
 */
export function renderFlamegraph(stacks, opts = {}) {
  const width = opts.width ?? 1200;
  const minPct = opts.minPct ?? 0.05;
  const colorOf = opts.colorOf ?? defaultColor;
  const rowH = 16;
  const pad = 10;
  const root = { name: "all", value: 0, children: new Map() };
  for (const [stack, n] of stacks) {
    root.value += n;
    let node = root;
    for (const f of stack.split(";")) {
      let c = node.children.get(f);
      if (!c) node.children.set(f, (c = { name: f, value: 0, children: new Map() }));
      c.value += n;
      node = c;
    }
  }
  const total = root.value || 1;
  const minValue = (total * minPct) / 100;
  // layout: x in samples, depth from the bottom
  const rects = [];
  let maxDepth = 0;
  const walk = (node, x, depth) => {
    rects.push({ node, x, depth });
    if (depth > maxDepth) maxDepth = depth;
    let cx = x;
    const kids = [...node.children.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const c of kids) {
      if (c.value >= minValue) walk(c, cx, depth + 1);
      cx += c.value;
    }
  };
  walk(root, 0, 0);
  const legendH = opts.legend?.length ? 20 : 0;
  const top = 50 + legendH;
  const height = top + (maxDepth + 1) * rowH + pad * 2;
  const plotW = width - 2 * pad;
  const scale = plotW / total;
  const out = [];
  out.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="monospace" font-size="11">`,
  );
  out.push(`<style>.f:hover rect{stroke:#000;stroke-width:.5}.f{cursor:pointer}text{pointer-events:none}</style>`);
  out.push(`<rect width="100%" height="100%" fill="#fafaf5"/>`);
  out.push(`<text x="${pad}" y="20" font-size="15" font-weight="bold">${esc(opts.title ?? "flame graph")}</text>`);
  out.push(`<text x="${pad}" y="38" fill="#555">${esc(opts.subtitle ?? `${total} samples`)}</text>`);
  if (opts.legend?.length) {
    let lx = pad;
    for (const [label, color] of opts.legend) {
      out.push(`<rect x="${lx}" y="${46}" width="12" height="12" fill="${color}"/>`);
      out.push(`<text x="${lx + 16}" y="${56}">${esc(label)}</text>`);
      lx += 24 + label.length * 6.6;
    }
  }
  out.push(`<g id="frames">`);
  for (const { node, x, depth } of rects) {
    const w = node.value * scale;
    const y = height - pad - (depth + 1) * rowH;
    const pct = ((100 * node.value) / total).toFixed(2);
    const fill = node === root ? "#ddd" : colorOf(node.name);
    const chars = Math.floor((w - 6) / 6.6);
    let label = "";
    if (chars >= 3) label = node.name.length <= chars ? node.name : node.name.slice(0, chars - 2) + "..";
    out.push(
      `<g class="f" data-x="${x}" data-w="${node.value}" data-d="${depth}"><title>${esc(node.name)} (${node.value} samples, ${pct}%)</title>` +
        `<rect x="${(pad + x * scale).toFixed(2)}" y="${y}" width="${Math.max(w - 0.5, 0.1).toFixed(2)}" height="${rowH - 1}" fill="${fill}" rx="1"/>` +
        (label ? `<text x="${(pad + x * scale + 3).toFixed(2)}" y="${y + rowH - 4}">${esc(label)}</text>` : "") +
        `</g>`,
    );
  }
  out.push(`</g>`);
  // click to zoom: rescale every frame relative to the clicked one (frames outside vanish)
  out.push(`<script><![CDATA[
(function(){var P=${pad},W=${plotW},T=${total};var gs=[].slice.call(document.querySelectorAll('g.f'));
gs.forEach(function(g){var r=g.querySelector('rect'),t=g.querySelector('text');g._x=+g.dataset.x;g._w=+g.dataset.w;g._d=+g.dataset.d;g._n=g.querySelector('title').textContent;if(t)g._t=t;
g.addEventListener('click',function(){zoom(g)});});
function zoom(z){var x0=z._x,w0=z._w,d0=z._d,s=W/w0;gs.forEach(function(g){var r=g.querySelector('rect');
var vis=(g._d<=d0)?(g._x<=x0&&g._x+g._w>=x0+w0):(g._x>=x0&&g._x+g._w<=x0+w0);
if(!vis){g.style.display='none';return;}g.style.display='';var x=g._d<d0?0:(g._x-x0)*s,w=g._d<d0?W:g._w*s;
r.setAttribute('x',(P+x).toFixed(2));r.setAttribute('width',Math.max(w-0.5,0.1).toFixed(2));
if(g._t){var n=g._n.replace(/ \\(\\d+ samples.*$/,''),c=Math.floor((w-6)/6.6);g._t.setAttribute('x',(P+x+3).toFixed(2));
g._t.textContent=c<3?'':(n.length<=c?n:n.slice(0,c-2)+'..');}});}
})();
]]></script>`);
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const [file, title] = process.argv.slice(2);
  if (!file) {
    console.error("usage: flamegraph.mjs IN.folded [TITLE] > OUT.svg");
    process.exit(2);
  }
  process.stdout.write(renderFlamegraph(parseFolded(readFileSync(file, "utf8")), { title: title ?? file }));
}
