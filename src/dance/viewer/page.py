"""The viewer's single HTML page and its script (vanilla JavaScript, no external resources; plotly.js is served
locally).

The page carries the server's per-launch token in ``<meta name="dance-token">`` (filled in by :func:`render_page`);
the script sends it in the ``X-Dance-Token`` header of every POST, which the server requires. The script is served
as ``/static/viewer.js`` so that the Content-Security-Policy can forbid inline scripts.
"""

from __future__ import annotations

import html

TOKEN_HEADER = "X-Dance-Token"

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>DANCE viewer</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="dance-token" content="{{token}}">
<script src="/static/viewer.js" defer></script>
<style>
  :root { --ink:#1d2433; --muted:#667085; --line:#d9dde5; --bg:#f7f7f4; --ok:#2e7d32; --bad:#c62828;
          --motion:#3a5ba0; --object:#8a5a00; --scene:#2f7a6b; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.4 system-ui, sans-serif; color:var(--ink); background:var(--bg); }
  header { display:flex; gap:16px; align-items:center; padding:10px 16px; background:#fff;
           border-bottom:1px solid var(--line); flex-wrap:wrap; }
  header h1 { font-size:17px; margin:0 12px 0 0; }
  main { display:grid; grid-template-columns: 260px 1fr 1fr; gap:12px; padding:12px; }
  section { background:#fff; border:1px solid var(--line); border-radius:6px; padding:10px 12px; min-width:0; }
  h2 { font-size:14px; margin:0 0 8px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); }
  #samples { list-style:none; margin:6px 0 0; padding:0; max-height:72vh; overflow:auto; }
  #samples li { padding:4px 6px; cursor:pointer; border-radius:4px; display:flex; justify-content:space-between;
                gap:6px; }
  #samples li span { white-space:nowrap; overflow:hidden; text-overflow:ellipsis; }
  #samples li span:first-child { flex-shrink:0; }
  #samples li:hover { background:#eef1f6; } #samples li.sel { background:#dfe6f3; }
  .ok { color:var(--ok); } .bad { color:var(--bad); } .muted { color:var(--muted); font-size:12px; }
  #preview { width:100%; max-width:320px; image-rendering:pixelated; border-radius:4px; background:#eee;
             display:block; margin-bottom:8px; }
  #prediction .cls { font-size:22px; font-weight:600; }
  .bar { height:8px; background:#c9d4ea; border-radius:4px; }
  .bar > div { height:100%; background:var(--motion); border-radius:4px; }
  table { border-collapse:collapse; width:100%; font-size:13px; }
  td, th { padding:3px 6px; border-bottom:1px solid #eef0f3; text-align:left; }
  td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
  .type-motion { color:var(--motion); } .type-object { color:var(--object); } .type-scene { color:var(--scene); }
  tr.off td { color:#999; text-decoration:line-through; }
  .chip { display:inline-block; background:#eee; border-radius:10px; padding:1px 8px; margin:2px; font-size:12px; }
  .chip button { border:none; background:none; cursor:pointer; padding:0 0 0 4px; }
  #error { display:none; background:#fdecea; color:var(--bad); padding:6px 16px; border-bottom:1px solid #f5c6c0; }
  .row { display:flex; gap:8px; align-items:center; flex-wrap:wrap; margin:6px 0; }
  input[type=number] { width:90px; } input[type=text] { min-width:180px; }
  #w-class-weights { max-height:180px; overflow:auto; display:block; }
  #w-class-weights tr { cursor:pointer; } #w-class-weights tr:hover { background:#eef1f6; }
  #sankey { min-height:120px; }
  img.thumb { height:36px; vertical-align:middle; }
</style>
</head>
<body>
<header>
  <h1>DANCE viewer</h1>
  <span id="run-name" class="muted"></span>
  <label>model version <select id="version"></select></label>
  <label>split <select id="split"></select></label>
</header>
<div id="error"></div>
<main>
  <section>
    <h2>Videos</h2>
    <input id="sample-filter" type="text" placeholder="filter by id or class">
    <div id="sample-count" class="muted"></div>
    <ul id="samples"></ul>
  </section>
  <section>
    <h2>Prediction and explanation</h2>
    <img id="preview" alt="">
    <div id="prediction"><span class="muted">choose a video</span></div>
    <div class="row">
      <input id="off-input" type="text" list="concept-names" placeholder="switch off any concept (type:name)">
      <button id="off-add">switch off</button>
      <button id="off-reset">all on</button>
    </div>
    <div id="off-list"></div>
    <div id="concepts"></div>
  </section>
  <section>
    <h2>Edit a class-concept weight</h2>
    <div class="row"><label>class <select id="w-class"></select></label></div>
    <div class="row"><input id="w-concept" type="text" list="concept-names" placeholder="concept (type:name)">
      <label>weight <input id="w-value" type="number" step="0.1" value="0"></label></div>
    <div class="row"><button id="w-preview">show effect</button><button id="w-save">save as new version</button></div>
    <div id="w-result" class="muted">effect on the chosen split appears here</div>
    <h2 style="margin-top:10px">non-zero weights of the class</h2>
    <table id="w-class-weights"></table>
    <h2 style="margin-top:14px">Sankey: concepts → classes</h2>
    <div class="row"><select id="sk-a"></select><select id="sk-b"></select>
      <label>top <input id="sk-top" type="number" value="8" min="1" max="40"></label>
      <button id="sk-show">show</button></div>
    <div id="sankey" class="muted"></div>
  </section>
</main>
<datalist id="concept-names"></datalist>
</body>
</html>
"""

SCRIPT = r"""
"use strict";
const S = { info:null, version:null, split:null, sample:null, off:[], samples:[], last:null };
const $ = (id) => document.getElementById(id);
// the per-launch token the server put into the page; every POST must carry it
const TOKEN = document.querySelector('meta[name="dance-token"]').content;
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const kid of kids) if (kid != null) e.append(kid);
  return e;
}
function put(node, ...kids) { node.replaceChildren(...kids.filter(k => k != null)); }
function showError(msg) { const b = $("error"); b.textContent = msg || ""; b.style.display = msg ? "block" : "none"; }
async function api(path, body) {
  const opt = body === undefined ? {} : { method:"POST", credentials:"same-origin",
    headers:{"Content-Type":"application/json", "X-Dance-Token":TOKEN}, body: JSON.stringify(body) };
  const r = await fetch(path, opt);
  let data;
  try { data = await r.json(); } catch (e) { data = { error: `${r.status} ${r.statusText}` }; }
  if (!r.ok) { const msg = data.error || r.statusText; showError(msg); throw new Error(msg); }
  showError("");
  return data;
}
const fmt = (x, d=3) => (x === null || x === undefined) ? "–" : Number(x).toFixed(d);
function fillSelect(sel, values, chosen) {
  sel.replaceChildren(...values.map(v => el("option", {value:v, text:v})));
  if (chosen !== undefined) sel.value = chosen;
}

async function loadInfo() {
  S.info = await api("/api/info");
  $("run-name").textContent = S.info.run;
  S.version = S.version || S.info.version;
  fillSelect($("version"), S.info.versions.filter(v => !v.stale).map(v => v.name), S.version);
  [...$("version").options].forEach(o => {
    const v = S.info.versions.find(x => x.name === o.value); o.textContent = v.name + " — " + v.label; });
  fillSelect($("split"), Object.keys(S.info.splits), S.split || S.info.default_split);
  S.split = $("split").value;
  fillSelect($("w-class"), S.info.classes);
  fillSelect($("sk-a"), S.info.classes, S.info.classes[0]);
  fillSelect($("sk-b"), S.info.classes, S.info.classes[Math.min(1, S.info.classes.length - 1)]);
  $("concept-names").replaceChildren(...S.info.concepts.map(c => el("option", {value:c})));
  if (!S.info.sankey.available) $("sankey").textContent = "Sankey unavailable: " + S.info.sankey.reason;
}

async function loadSamples() {
  S.samples = await api(`/api/samples?split=${encodeURIComponent(S.split)}&version=${S.version}`);
  renderSamples();
}
function renderSamples() {
  const f = $("sample-filter").value.toLowerCase();
  const shown = S.samples.filter(s => !f || s.id.toLowerCase().includes(f) || s.label.toLowerCase().includes(f));
  const right = S.samples.filter(s => s.correct).length;
  $("sample-count").textContent = `${shown.length} of ${S.samples.length} videos; ${right} predicted correctly`;
  $("samples").replaceChildren(...shown.map(s => el("li",
    { "data-id": s.id, class: s.id === S.sample ? "sel" : "", onclick: () => selectSample(s.id) },
    el("span", {text: s.id}), el("span", {class: s.correct ? "ok" : "bad",
      text: (s.correct ? "✓ " : "✗ ") + s.predicted, title: "label: " + s.label}))));
}

async function selectSample(id) {
  S.sample = id; S.off = [];
  $("preview").src = "/media/sample/" + encodeURIComponent(id) + ".gif";
  $("preview").alt = id;
  renderSamples();
  await refresh();
  const p = S.last.before;
  $("w-class").value = p.predicted; loadClassWeights();
  $("sk-a").value = p.predicted;
  if (p.probabilities.length > 1) $("sk-b").value = p.probabilities[1].class;
}

async function refresh() {
  if (!S.sample) return;
  S.last = await api("/api/predict", { sample:S.sample, off:S.off, version:S.version, k:5 });
  renderPrediction(S.last);
}

function renderPrediction(r) {
  const a = r.after, b = r.before, right = a.predicted === r.label;
  const probs = el("table", {}, ...a.probabilities.map(p => el("tr", {},
    el("td", {text:p.class}), el("td", {class:"num", text:fmt(p.p)}),
    el("td", {style:"width:40%"}, el("div", {class:"bar"}, el("div", {style:`width:${100 * p.p}%`}))))));
  const shares = Object.entries(a.type_shares).map(([t, v]) => `${t} ${v >= 0 ? "+" : ""}${fmt(v, 2)}`).join(", ");
  put($("prediction"),
    el("div", {class:"muted", text:`${r.sample} · label ${r.label} · ${r.split} · model ${r.version}`}),
    el("div", {}, el("span", {class:"cls " + (right ? "ok" : "bad"), id:"predicted-class", text:a.predicted}),
       el("span", {class:"muted", text: right ? "  correct" : "  wrong"})),
    r.off.length ? el("div", {class: r.changed ? "bad" : "muted", text: (r.changed ? "changed: " : "unchanged: ") +
      `${b.predicted} (p=${fmt(b.probabilities[0].p)}) with every concept on; ${r.off.length} switched off`}) : null,
    probs,
    el("div", {class:"muted", text:"logit share per concept type for " + a.predicted + ": " + shares}));
  $("off-list").replaceChildren(...r.off.map(c => el("span", {class:"chip"}, c,
    el("button", {title:"switch on", text:"×", onclick: () => { S.off = S.off.filter(x => x !== c); refresh(); }}))));
  // the concept list stays the one of the unedited prediction, so a switched-off concept can be switched on again
  const blocks = [];
  for (const [type, items] of Object.entries(b.top)) {
    if (!items.length) continue;
    const rows = items.map(c => {
      const on = !S.off.includes(c.concept);
      const box = el("input", {type:"checkbox", class:"concept-toggle", "data-concept":c.concept,
        title: on ? "switch this concept off" : "switch it on again"});
      box.checked = on;
      box.addEventListener("change", () => {
        S.off = box.checked ? S.off.filter(x => x !== c.concept) : [...S.off, c.concept]; refresh(); });
      const thumb = type === "motion" ? el("img", {class:"thumb", loading:"lazy", alt:"",
        src:"/media/concept/" + encodeURIComponent(c.name) + ".gif"}) : null;
      return el("tr", {class: on ? "" : "off"}, el("td", {}, box), el("td", {}, thumb),
        el("td", {class:"type-" + type, text:c.name}),
        el("td", {class:"num", text:fmt(c.probability, 2)}),
        el("td", {class:"num", text:fmt(c.activation, 2)}),
        el("td", {class:"num", text:fmt(c.weight, 3)}), el("td", {class:"num", text:fmt(c.contribution, 3)}));
    });
    blocks.push(el("h2", {style:"margin-top:10px", text:`${type} concepts for ${b.predicted}`}),
      el("table", {}, el("tr", {}, el("th", {text:"on"}), el("th", {}), el("th", {text:"concept"}),
        el("th", {class:"num", text:"present", title:"predicted probability that the video has it (motion)"}),
        el("th", {class:"num", text:"activation"}), el("th", {class:"num", text:"weight"}),
        el("th", {class:"num", text:"contribution"})), ...rows));
  }
  $("concepts").replaceChildren(...blocks);
}

async function loadClassWeights() {
  const cls = $("w-class").value;
  if (!cls) return;
  const r = await api(`/api/class?name=${encodeURIComponent(cls)}&version=${S.version}`);
  $("w-class-weights").replaceChildren(...r.weights.map(w => el("tr", {onclick: () => {
      $("w-concept").value = w.concept; $("w-value").value = w.weight; }},
    el("td", {text:w.concept}), el("td", {class:"num", text:fmt(w.weight, 4)}))));
  if (!r.weights.length) $("w-class-weights").replaceChildren(el("tr", {}, el("td", {text:"no non-zero weights"})));
}

async function weightEdit(save) {
  const body = { class:$("w-class").value, concept:$("w-concept").value.trim(), weight:Number($("w-value").value),
                 split:S.split, version:S.version, save };
  const r = await api("/api/weight", body);
  const list = (ids) => ids.length ? ids.join(", ") : "none";
  put($("w-result"),
    el("div", {id:"w-summary", text:`W[${r.class}, ${r.concept}]: ${fmt(r.old_weight, 4)} → ${fmt(r.new_weight, 4)}` +
      ` · ${r.split} (${r.n} videos): accuracy ${fmt(r.accuracy_before)} → ${fmt(r.accuracy_after)},` +
      ` fixed ${r.fixed}, broken ${r.broken}, changed ${r.changed}`}),
    el("div", {class:"ok", text:"fixed: " + list(r.fixed_ids)}),
    el("div", {class:"bad", text:"broken: " + list(r.broken_ids)}),
    r.saved ? el("div", {text:`saved as ${r.saved} (parent ${r.version})`}) : null);
  if (r.saved) {
    S.version = r.saved;
    await loadInfo(); await loadSamples(); await refresh(); await loadClassWeights();
  }
}

let plotlyLoading = null;
function loadPlotly() {
  if (window.Plotly) return Promise.resolve();
  if (!plotlyLoading) plotlyLoading = new Promise((ok, fail) => {
    const s = el("script", {src:"/static/plotly.min.js"}); s.onload = ok; s.onerror = () => fail(new Error(
      "cannot load plotly.js")); document.head.append(s); });
  return plotlyLoading;
}
async function showSankey() {
  const classes = [...new Set([$("sk-a").value, $("sk-b").value])].map(encodeURIComponent).join(",");
  const r = await api(`/api/sankey?classes=${classes}&top=${$("sk-top").value}&version=${S.version}`);
  if (!r.available) { $("sankey").textContent = "Sankey unavailable: " + r.reason; return; }
  await loadPlotly();
  const fig = JSON.parse(r.figure);
  delete fig.layout.width; fig.layout.autosize = true;  // fit the panel
  $("sankey").replaceChildren();
  window.Plotly.newPlot("sankey", fig.data, fig.layout, {displaylogo:false, responsive:true});
}

$("version").addEventListener("change", async () => {
  S.version = $("version").value; await loadSamples(); await refresh(); await loadClassWeights(); });
$("split").addEventListener("change", async () => { S.split = $("split").value; await loadSamples(); });
$("sample-filter").addEventListener("input", renderSamples);
$("off-add").addEventListener("click", () => {
  const c = $("off-input").value.trim(); if (c && !S.off.includes(c)) { S.off.push(c); $("off-input").value = "";
    refresh().catch(() => { S.off = S.off.filter(x => x !== c); }); } });
$("off-reset").addEventListener("click", () => { S.off = []; refresh(); });
$("w-class").addEventListener("change", loadClassWeights);
$("w-preview").addEventListener("click", () => weightEdit(false));
$("w-save").addEventListener("click", () => weightEdit(true));
$("sk-show").addEventListener("click", showSankey);

(async () => {
  await loadInfo(); await loadSamples();
  if (S.samples.length) await selectSample(S.samples[0].id);
  document.body.dataset.ready = "1";
})().catch(e => showError(String(e)));
"""


def render_page(token: str) -> str:
    """The page with the server's token in it (a token is URL-safe base64, escaped anyway)."""
    return PAGE.replace("{{token}}", html.escape(token, quote=True))
