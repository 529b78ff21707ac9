// The leadership dashboard: plain JavaScript, no library, no network but this server's API.
// Every figure comes from the API with the signed-in token (kept in sessionStorage).
'use strict';

// The headline of the issue: hotline rates, build and operating rates at the four levels,
// adviser coverage, notary settled, full-time mediators, in-budget funding.
const HEADLINE = [
  'hotline.answer_rate', 'hotline.evaluation_rate', 'hotline.satisfaction_rate',
  'coverage.city_center', 'coverage.county_center', 'coverage.township_build_rate',
  'coverage.township_operating_rate', 'coverage.village_build_rate',
  'coverage.village_adviser_rate', 'coverage.notary_settled',
  'staff.full_time_mediator_share', 'funding.in_budget_share',
];
const AMBER_FROM = 0.95;

const S = {
  token: null, me: null, catalog: {}, ids: [], quarter: null, city: null,
  assessment: null, countyRows: [], sort: { key: 'rank', dir: 1 }, tables: {},
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

// ---- the API ----------------------------------------------------------------------------

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: 'Bearer ' + S.token }, options.headers || {});
  const r = await fetch(path, Object.assign({}, options, { headers }));
  if (r.status === 401) {
    signOut('令牌无效或已被撤销，请重新登录。');
    throw new Error('unauthorized');
  }
  return r;
}

async function getJson(path) {
  const r = await api(path);
  if (!r.ok) {
    const e = await r.json().catch(() => ({}));
    const err = new Error(e.message || String(r.status));
    err.status = r.status;
    throw err;
  }
  return r.json();
}

// ---- numbers ----------------------------------------------------------------------------

// As the catalog's display format says (the same rules as the server's reports).
function fmt(id, v) {
  if (v === null || v === undefined) return '—';
  const f = (S.catalog[id] || {}).format;
  if (f === 'percent1') return (v * 100).toFixed(1) + '%';
  if (f === 'int' || f === 'yuan0') return Math.round(v).toLocaleString('en-US');
  if (f === 'dec1') return v.toFixed(1);
  return v.toFixed(2);
}

// The target in force in the quarter's year, from the catalog.
function targetOf(id, quarter) {
  const year = Number(quarter.slice(0, 4));
  const ts = ((S.catalog[id] || {}).targets || []).filter((t) => t.from_year <= year);
  ts.sort((a, b) => a.from_year - b.from_year);
  return ts.length ? ts[ts.length - 1] : null;
}

// The tolerance of the assessment on screen (its method's), else the default.
function amberFrom() {
  return (S.assessment && S.assessment.method && S.assessment.method.amber_from) || AMBER_FROM;
}

// green, amber, red, none (no value) or '' (no target): indicators.md, Assessment. `row` is an
// /v1/indicators row when there is one: its target and meets_target are the warehouse's.
function status(id, value, quarter, row) {
  if (value === null || value === undefined) return 'none';
  const t = targetOf(id, quarter);
  const target = row && row.target !== null && row.target !== undefined ? row.target : (t && t.value);
  if (target === null || target === undefined || !t) return '';
  const met = row && typeof row.meets_target === 'boolean'
    ? row.meets_target
    : (t.comparison === '>=' ? value >= target : value === target);
  if (met) return 'green';
  const att = t.comparison === '=' && target === 0 ? 1 - value : Math.min(value / target, 1);
  return att >= amberFrom() ? 'amber' : 'red';
}

function targetText(id, quarter) {
  const t = targetOf(id, quarter);
  return t ? '目标 ' + (t.comparison === '>=' ? '≥ ' : '= ') + fmt(id, t.value) : '无目标';
}

function defButton(id) {
  return el('button', { class: 'def', type: 'button', title: '定义', 'data-def': id, onclick: (ev) => { ev.stopPropagation(); showDefinition(id); } }, 'ⓘ');
}

function showDefinition(id) {
  const c = S.catalog[id];
  if (!c) return;
  $('def-name').textContent = c.name_zh + '（' + id + '）';
  $('def-text').textContent = c.definition_zh;
  $('def-meta').textContent = '单位：' + c.unit + '；' + targetText(id, S.quarter) + '；适用：' + c.scopes.join('、');
  $('definition').showModal();
}

// ---- sign in and out ----------------------------------------------------------------------

function signOut(message) {
  sessionStorage.removeItem('plsw.token');
  S.token = null;
  $('dash').hidden = true;
  $('bar').hidden = true;
  $('signin').hidden = false;
  const e = $('signin-error');
  e.hidden = !message;
  e.textContent = message || '';
}

async function signIn(token) {
  S.token = token;
  try {
    S.me = await getJson('/v1/me');
  } catch (e) {
    if (e.message !== 'unauthorized') signOut('无法登录：' + e.message);
    return;
  }
  sessionStorage.setItem('plsw.token', token);
  const cat = await getJson('/v1/indicators/catalog');
  S.catalog = {};
  S.ids = [];
  for (const c of cat.indicators) { S.catalog[c.id] = c; S.ids.push(c.id); }
  $('signin').hidden = true;
  $('dash').hidden = false;
  $('bar').hidden = false;
  $('who').textContent = (S.me.unit_name || S.me.unit_id) + ' · ' + S.me.role + ' · ' + (S.me.home ? S.me.home.name : '');
  if (!S.me.home) {
    // None of the token's places is in the divisions now loaded.
    $('status').textContent = '此令牌的范围内没有地区（其代码不在当前行政区划中）。';
    for (const p of document.querySelectorAll('#dash .panel')) p.hidden = true;
    document.body.dataset.ready = 'empty';
    return;
  }
  const q = $('quarter');
  q.replaceChildren(...S.me.quarters.map((x) => el('option', { value: x, text: x })));
  S.quarter = S.me.quarters[S.me.quarters.length - 1] || null;
  q.value = S.quarter;
  const trend = $('trend-indicator');
  trend.replaceChildren(...S.ids
    .filter((id) => S.catalog[id].scopes.includes(S.me.home ? S.me.home.scope : 'province'))
    .map((id) => el('option', { value: id, text: S.catalog[id].name_zh })));
  trend.value = S.me.home && S.me.home.scope === 'county' ? 'workorders.on_time_rate' : 'hotline.answer_rate';
  S.city = null;
  await render();
}

// ---- rendering ----------------------------------------------------------------------------

async function render() {
  document.body.dataset.ready = '';
  if (!S.quarter) {
    $('status').textContent = '仓库中还没有指标（请先运行 plsw transform）。';
    document.body.dataset.ready = 'empty';
    return;
  }
  await Promise.all([renderHeadline(), renderAssessment()]);
  await Promise.all([renderCounties(), renderTrend()]);
  document.body.dataset.ready = S.quarter + '|' + (S.city || '');
}

// The place the headline shows: the city opened, else the token's home.
function focus() {
  if (S.city) {
    const c = S.me.places.cities.find((x) => x.code === S.city);
    return { scope: 'city', code: S.city, name: c ? c.name : S.city };
  }
  return S.me.home;
}

async function renderHeadline() {
  const f = focus();
  $('headline-title').textContent = f.name + ' · 核心指标 · ' + S.quarter;
  const data = await getJson(`/v1/indicators?quarter=${S.quarter}&scope=${f.scope}&code=${f.code}`);
  const byId = {};
  for (const r of data.rows) byId[r.indicator] = r;
  const cards = [];
  for (const id of HEADLINE) {
    const r = byId[id];
    if (!r) continue; // not at this scope
    const st = status(id, r.value, S.quarter, r);
    cards.push(el('div', { class: 'card ' + st, 'data-indicator': id, 'data-value': r.value === null ? '' : String(r.value), 'data-status': st },
      el('div', { class: 'name' }, S.catalog[id].name_zh, defButton(id)),
      el('div', { class: 'value', text: fmt(id, r.value) }),
      el('div', { class: 'target', text: targetText(id, S.quarter) })));
  }
  $('headline').replaceChildren(...cards);
}

async function renderAssessment() {
  const published = (S.me.published || []).includes(S.quarter);
  const url = `/v1/assessments/${S.quarter}` + (published ? '' : '?live=true');
  try {
    const r = await api(url);
    if (!r.ok) throw new Error((await r.json().catch(() => ({}))).message || r.status);
    S.assessment = await r.json();
    $('status').textContent = published
      ? `${S.quarter} 考核：已发布（第 ${r.headers.get('x-revision')} 版，${r.headers.get('x-published-at')}）`
      : `${S.quarter} 考核：未发布，按默认方法实时计算`;
  } catch (e) {
    if (e.message === 'unauthorized') throw e;
    S.assessment = { cities: [], counties: [] };
    $('status').textContent = `${S.quarter} 考核：无法计算（${e.message}）`;
  }
  const cities = S.assessment.cities;
  $('cities-panel').hidden = cities.length === 0;
  const columns = ['排名', '代码', '名称', '得分', '得分变化', '名次变化', '达标', '接近', '未达标'];
  const rows = cities.map((c) => [c.rank, c.code, c.name, c.score, c.score_change, c.rank_change, c.green, c.amber, c.red]);
  S.tables.cities = { title: `省辖市考核排名 ${S.quarter}`, columns, rows };
  const head = el('tr', {}, ...columns.map((h) => el('th', { text: h })));
  const body = cities.map((c) => el('tr', {
    class: 'clickable' + (c.code === S.city ? ' selected' : ''), 'data-code': c.code,
    onclick: () => openCity(c.code),
  },
  el('td', { class: 'num', text: c.rank ?? '—' }),
  el('td', { text: c.code }),
  el('td', { text: c.name }),
  el('td', { class: 'num', 'data-col': 'score', text: c.score === null ? '—' : c.score.toFixed(2) }),
  el('td', { class: 'num', text: signed(c.score_change, 2) }),
  el('td', { class: 'num', text: signed(c.rank_change, 0) }),
  el('td', { class: 'num green', text: c.green }),
  el('td', { class: 'num amber', text: c.amber }),
  el('td', { class: 'num red', text: c.red })));
  $('cities').replaceChildren(el('thead', {}, head), el('tbody', {}, ...body));
  $('ranking-note').textContent = '按考核得分排名，并列同名次；点击一个市查看其县（市、区）。';
}

function signed(v, d) {
  if (v === null || v === undefined) return '—';
  return (v > 0 ? '+' : '') + Number(v).toFixed(d);
}

async function openCity(code) {
  S.city = S.city === code ? null : code;
  await render();
}

async function renderCounties() {
  S.countyRows = (await getJson(`/v1/indicators?quarter=${S.quarter}&scope=county`)).rows;
  drawCounties();
}

// The county table from the rows last fetched: filtered to the city opened, sorted.
function drawCounties() {
  const names = {};
  for (const c of S.me.places.counties) names[c.code] = c;
  const cityName = {};
  for (const c of S.me.places.cities) cityName[c.code] = c.name;
  const scores = {};
  for (const c of S.assessment.counties || []) scores[c.code] = c;
  const byCode = {};
  for (const r of S.countyRows) {
    const row = byCode[r.code] || (byCode[r.code] = { code: r.code, values: {} });
    row.values[r.indicator] = r.value;
    (row.src || (row.src = {}))[r.indicator] = r;
  }
  let rows = Object.values(byCode).filter((r) => names[r.code]);
  if (S.city) rows = rows.filter((r) => names[r.code].city_code === S.city);
  const ids = S.ids.filter((id) => S.catalog[id].scopes.includes('county'));
  for (const r of rows) {
    r.name = names[r.code].name;
    r.city = cityName[names[r.code].city_code] || names[r.code].city_code;
    r.score = scores[r.code] ? scores[r.code].score : null;
    r.rank = scores[r.code] ? scores[r.code].rank : null;
  }
  const key = S.sort.key;
  const val = (r) => (key in r ? r[key] : r.values[key]);
  rows.sort((a, b) => {
    const x = val(a); const y = val(b);
    if (x === y) return a.code < b.code ? -1 : 1;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * S.sort.dir;
  });
  const fixed = [['rank', '排名'], ['code', '代码'], ['name', '名称'], ['city', '所属市'], ['score', '考核得分']];
  const th = (k, label, id) => el('th', {
    'data-key': k,
    class: S.sort.key === k ? (S.sort.dir > 0 ? 'sorted-asc' : 'sorted-desc') : null,
    onclick: () => { S.sort = { key: k, dir: S.sort.key === k ? -S.sort.dir : (id ? -1 : 1) }; drawCounties(); },
  }, label, id ? defButton(id) : null);
  const head = el('tr', {}, ...fixed.map(([k, l]) => th(k, l)), ...ids.map((id) => th(id, S.catalog[id].short_zh, id)));
  const body = rows.map((r) => el('tr', { 'data-code': r.code },
    el('td', { class: 'num', text: r.rank ?? '—' }),
    el('td', { text: r.code }),
    el('td', { text: r.name }),
    el('td', { text: r.city }),
    el('td', { class: 'num', text: r.score === null ? '—' : r.score.toFixed(2) }),
    ...ids.map((id) => {
      const v = r.values[id];
      const st = status(id, v, S.quarter, r.src && r.src[id]);
      return el('td', { class: 'num ' + st, 'data-indicator': id, 'data-value': v === null || v === undefined ? '' : String(v), text: fmt(id, v) });
    })));
  $('counties').replaceChildren(el('thead', {}, head), el('tbody', {}, ...body));
  const title = (S.city ? (cityName[S.city] || S.city) + ' · ' : '') + '县（市、区）指标 · ' + S.quarter;
  $('counties-title').textContent = title;
  $('all-cities').hidden = !S.city;
  S.tables.counties = {
    title,
    columns: fixed.map((f) => f[1]).concat(ids.map((id) => S.catalog[id].name_zh)),
    rows: rows.map((r) => [r.rank, r.code, r.name, r.city, r.score].concat(ids.map((id) => r.values[id] ?? null))),
  };
}

// ---- the trend chart (SVG) ------------------------------------------------------------------

async function renderTrend() {
  const id = $('trend-indicator').value;
  if (!id) return;
  const series = [];
  const home = S.me.home;
  if (S.catalog[id].scopes.includes(home.scope)) {
    const d = await getJson(`/v1/indicators?indicator=${id}&scope=${home.scope}&code=${home.code}`);
    series.push({ name: home.name, rows: d.rows, colour: '#b71c1c' });
  }
  if (S.city && S.city !== home.code && S.catalog[id].scopes.includes('city')) {
    const d = await getJson(`/v1/indicators?indicator=${id}&scope=city&code=${S.city}`);
    series.push({ name: focus().name, rows: d.rows, colour: '#0969da' });
  }
  $('trend').replaceChildren(chart(id, series));
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function chart(id, series) {
  const W = 760; const H = 300; const L = 64; const R = 16; const T = 28; const B = 40;
  const quarters = S.me.quarters;
  const values = series.flatMap((s) => s.rows.map((r) => r.value)).filter((v) => v !== null);
  const t = targetOf(id, quarters[quarters.length - 1] || '2000Q1');
  if (t) values.push(t.value);
  let max = values.length ? Math.max(...values) : 1;
  const min = Math.min(0, ...values);
  if ((S.catalog[id] || {}).unit === 'rate') max = Math.max(max, 1);
  if (max === min) max = min + 1;
  const x = (i) => L + (quarters.length <= 1 ? 0 : (i * (W - L - R)) / (quarters.length - 1));
  const y = (v) => T + (H - T - B) * (1 - (v - min) / (max - min));
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': S.catalog[id].name_zh });
  for (let k = 0; k <= 4; k++) {
    const v = min + ((max - min) * k) / 4;
    root.append(svg('line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    root.append(svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmt(id, v)));
  }
  root.append(svg('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }));
  const step = Math.max(1, Math.ceil(quarters.length / 8));
  quarters.forEach((q, i) => {
    if (i % step === 0) root.append(svg('text', { x: x(i), y: H - B + 16, 'text-anchor': 'middle' }, q));
  });
  if (t) {
    root.append(svg('line', { class: 'target', x1: L, x2: W - R, y1: y(t.value), y2: y(t.value) }));
    root.append(svg('text', { x: W - R, y: y(t.value) - 4, 'text-anchor': 'end' }, targetText(id, quarters[quarters.length - 1])));
  }
  series.forEach((s, k) => {
    const pts = [];
    for (const r of s.rows) {
      const i = quarters.indexOf(r.quarter);
      if (i < 0 || r.value === null) continue;
      pts.push([x(i), y(r.value), r]);
    }
    if (pts.length) {
      root.append(svg('polyline', { points: pts.map((p) => p[0] + ',' + p[1]).join(' '), fill: 'none', stroke: s.colour, 'stroke-width': 2 }));
    }
    for (const [px, py, r] of pts) {
      root.append(svg('circle', { cx: px, cy: py, r: 3.5, fill: s.colour, 'data-quarter': r.quarter, 'data-value': String(r.value) },
        svg('title', {}, `${s.name} ${r.quarter}: ${fmt(id, r.value)}`)));
    }
    const g = svg('g', { class: 'legend' });
    g.append(svg('rect', { x: L + k * 160, y: 6, width: 12, height: 12, fill: s.colour }));
    g.append(svg('text', { x: L + k * 160 + 16, y: 16 }, s.name));
    root.append(g);
  });
  return root;
}

// ---- export -------------------------------------------------------------------------------

function download(blob, name) {
  const a = el('a', { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

function csvCell(v) {
  if (v === null || v === undefined) return '';
  let s = String(v);
  // Text that a spreadsheet would take for a formula is written as text.
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = "'" + s;
  return /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

async function exportTable(name, as) {
  const t = S.tables[name];
  if (!t) return;
  if (as === 'csv') {
    const text = [t.columns, ...t.rows].map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
    // A byte-order mark, so that Excel reads the Chinese as UTF-8.
    download(new Blob(['\ufeff' + text], { type: 'text/csv;charset=utf-8' }), t.title + '.csv');
  } else {
    const r = await api('/v1/export.xlsx', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(t),
    });
    if (r.ok) download(await r.blob(), t.title + '.xlsx');
  }
}

// ---- wiring -------------------------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
  $('signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    signIn($('token').value.trim());
  });
  $('signout').addEventListener('click', () => signOut(''));
  $('quarter').addEventListener('change', (ev) => { S.quarter = ev.target.value; render(); });
  $('trend-indicator').addEventListener('change', () => renderTrend());
  $('all-cities').addEventListener('click', () => { S.city = null; render(); });
  for (const b of document.querySelectorAll('[data-export]')) {
    b.addEventListener('click', () => exportTable(b.dataset.export, b.dataset.as));
  }
  const saved = sessionStorage.getItem('plsw.token');
  if (saved) signIn(saved); else signOut('');
});
