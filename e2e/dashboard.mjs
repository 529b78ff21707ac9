// The dashboard in Debian's Chromium, driven by playwright-core: sign in, read the headline,
// change the quarter, open a city, sort, read a definition, export, a phone's width, a
// city-scoped token. Every number on screen is checked against the API's.
//
// PLSW_URL (http://127.0.0.1:PORT), PLSW_TOKEN (a province viewer), PLSW_CITY_TOKEN (a viewer
// scoped to PLSW_CITY), SCREENSHOTS (a folder).
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const BASE = process.env.PLSW_URL;
const TOKEN = process.env.PLSW_TOKEN;
const CITY_TOKEN = process.env.PLSW_CITY_TOKEN;
const CITY = process.env.PLSW_CITY;
const SHOTS = process.env.SCREENSHOTS || 'screenshots';
fs.mkdirSync(SHOTS, { recursive: true });

let checks = 0;
function check(ok, what) {
  if (!ok) throw new Error('FAILED: ' + what);
  checks += 1;
}

async function api(p, token = TOKEN) {
  const r = await fetch(BASE + p, { headers: { Authorization: 'Bearer ' + token } });
  if (!r.ok) throw new Error(`${p}: ${r.status} ${await r.text()}`);
  return r.json();
}

const catalog = {};
for (const c of (await api('/v1/indicators/catalog')).indicators) catalog[c.id] = c;

// The display rules of the dashboard and of the server's reports.
function fmt(id, v) {
  if (v === null || v === undefined) return '—';
  const f = catalog[id].format;
  if (f === 'percent1') return (v * 100).toFixed(1) + '%';
  if (f === 'int' || f === 'yuan0') return Math.round(v).toLocaleString('en-US');
  if (f === 'dec1') return v.toFixed(1);
  return v.toFixed(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function signedIn(token, viewport) {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(BASE + '/');
  await page.waitForSelector('#signin-form');
  await page.fill('#token', token);
  await page.click('#signin-form button[type=submit]');
  await page.waitForFunction(() => /\|/.test(document.body.dataset.ready || ''));
  return { context, page, errors };
}

async function ready(page, quarter, city = '') {
  await page.waitForFunction((want) => document.body.dataset.ready === want, `${quarter}|${city}`);
}

// The headline cards against /v1/indicators for the place and quarter.
async function checkHeadline(page, quarter, scope, code, token = TOKEN) {
  const rows = (await api(`/v1/indicators?quarter=${quarter}&scope=${scope}&code=${code}`, token)).rows;
  const byId = Object.fromEntries(rows.map((r) => [r.indicator, r]));
  const cards = await page.$$eval('#headline .card', (cs) => cs.map((c) => ({
    id: c.dataset.indicator, value: c.dataset.value, text: c.querySelector('.value').textContent, status: c.dataset.status,
  })));
  check(cards.length >= 8, `${code} ${quarter}: at least 8 headline cards (${cards.length})`);
  for (const c of cards) {
    const r = byId[c.id];
    check(r !== undefined, `${c.id} exists at ${scope}`);
    check(c.value === (r.value === null ? '' : String(r.value)), `${c.id} ${quarter} value ${c.value} = API ${r.value}`);
    check(c.text === fmt(c.id, r.value), `${c.id} shows ${c.text}, API formats ${fmt(c.id, r.value)}`);
    if (r.value !== null && r.target !== null) {
      check((c.status === 'green') === (r.meets_target === true), `${c.id}: green exactly when the API says the target is met`);
    }
  }
  return cards.length;
}

try {
  const me = await api('/v1/me');
  const quarters = me.quarters;
  const last = quarters[quarters.length - 1];
  const first = quarters[0];

  // 1. Sign in at 1366×768.
  const { context, page, errors } = await signedIn(TOKEN, { width: 1366, height: 768 });
  await ready(page, last);
  check(await page.$eval('#signin', (e) => e.hidden), 'the sign-in form is gone');
  check(await page.evaluate(() => sessionStorage.getItem('plsw.token')) === TOKEN, 'the token is in session storage');
  await checkHeadline(page, last, 'province', '410000');
  await page.screenshot({ path: path.join(SHOTS, '1-province-1366.png'), fullPage: false });

  // 2. The cities ranked as the assessment says.
  const published = me.published.includes(last);
  const assessment = await api(`/v1/assessments/${last}` + (published ? '' : '?live=true'));
  const shown = await page.$$eval('#cities tbody tr', (rs) => rs.map((r) => ({ code: r.dataset.code, score: r.querySelector('[data-col=score]').textContent })));
  check(shown.length === assessment.cities.length, `every city ranked (${shown.length})`);
  assessment.cities.forEach((c, i) => {
    check(shown[i].code === c.code, `rank ${i + 1}: ${shown[i].code} = ${c.code}`);
    check(shown[i].score === (c.score === null ? '—' : c.score.toFixed(2)), `${c.code} score ${shown[i].score}`);
  });
  for (let i = 1; i < assessment.cities.length; i++) {
    check((assessment.cities[i - 1].score ?? -1) >= (assessment.cities[i].score ?? -1), 'cities in descending score');
  }

  // 3. Another quarter.
  await page.selectOption('#quarter', first);
  await ready(page, first);
  await checkHeadline(page, first, 'province', '410000');
  await page.screenshot({ path: path.join(SHOTS, '2-first-quarter-1366.png') });
  await page.selectOption('#quarter', last);
  await ready(page, last);

  // 4. Open a city: its headline, only its counties, their values.
  await page.click(`#cities tbody tr[data-code="${CITY}"]`);
  await ready(page, last, CITY);
  await checkHeadline(page, last, 'city', CITY);
  const ownCounties = me.places.counties.filter((c) => c.city_code === CITY).map((c) => c.code).sort();
  const rowsShown = (await page.$$eval('#counties tbody tr', (rs) => rs.map((r) => r.dataset.code))).sort();
  check(JSON.stringify(rowsShown) === JSON.stringify(ownCounties), `the city's counties only: ${rowsShown}`);
  const countyRows = (await api(`/v1/indicators?quarter=${last}&scope=county`)).rows;
  const cells = await page.$$eval('#counties tbody td[data-indicator]', (cs) => cs.map((c) => ({
    code: c.parentElement.dataset.code, id: c.dataset.indicator, value: c.dataset.value, text: c.textContent,
  })));
  check(cells.length >= ownCounties.length * 20, `county cells (${cells.length})`);
  for (const c of cells) {
    const r = countyRows.find((x) => x.code === c.code && x.indicator === c.id);
    const v = r ? r.value : null;
    check(c.value === (v === null ? '' : String(v)) && c.text === fmt(c.id, v), `${c.code} ${c.id}: ${c.text} = API ${v}`);
  }
  const trendPoints = await page.$$eval('#trend circle', (cs) => cs.length);
  check(trendPoints >= quarters.length, `the trend has a line per place (${trendPoints} points)`);
  await page.screenshot({ path: path.join(SHOTS, '3-city-1366.png'), fullPage: true });

  // 5. Sort by an indicator, descending on the first click.
  await page.click('#counties th[data-key="workorders.on_time_rate"]');
  await page.waitForSelector('#counties th.sorted-desc[data-key="workorders.on_time_rate"]');
  const sorted = await page.$$eval('#counties tbody td[data-indicator="workorders.on_time_rate"]', (cs) => cs.map((c) => c.dataset.value).filter((v) => v !== '').map(Number));
  check(sorted.every((v, i) => i === 0 || sorted[i - 1] >= v), `sorted by on-time rate: ${sorted}`);

  // 6. A definition on demand.
  await page.click('#headline .card .def');
  const defined = await page.$eval('#definition', (d) => ({ open: d.open, text: document.getElementById('def-text').textContent }));
  const firstCard = await page.$eval('#headline .card', (c) => c.dataset.indicator);
  check(defined.open && defined.text === catalog[firstCard].definition_zh, 'the definition is the catalog\'s');
  await page.click('#definition button');

  // 7. Export what is on screen.
  const [csv] = await Promise.all([page.waitForEvent('download'), page.click('[data-export=counties][data-as=csv]')]);
  const csvText = fs.readFileSync(await csv.path(), 'utf8');
  const lines = csvText.replace(/^\ufeff/, '').trim().split(/\r\n/);
  check(lines[0].startsWith('排名,代码,名称,所属市,考核得分,'), 'the CSV header');
  check(lines.length === ownCounties.length + 1, `the CSV has the rows on screen (${lines.length - 1})`);
  const [xlsx] = await Promise.all([page.waitForEvent('download'), page.click('[data-export=counties][data-as=xlsx]')]);
  const xlsxBytes = fs.readFileSync(await xlsx.path());
  check(xlsxBytes.length > 1000 && xlsxBytes.subarray(0, 2).toString() === 'PK', 'the XLSX is a workbook');
  check(errors.length === 0, 'no script errors: ' + errors.join('; '));
  await context.close();

  // 8. A phone's width: nothing wider than the screen but the scrolling tables.
  const phone = await signedIn(TOKEN, { width: 390, height: 844 });
  await ready(phone.page, last);
  const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `no horizontal overflow at 390 px (${overflow})`);
  await phone.page.screenshot({ path: path.join(SHOTS, '4-province-phone.png'), fullPage: true });
  await phone.context.close();

  // 9. A city-scoped token sees its city.
  const city = await signedIn(CITY_TOKEN, { width: 1366, height: 768 });
  await ready(city.page, last);
  await checkHeadline(city.page, last, 'city', CITY, CITY_TOKEN);
  const cityRows = await city.page.$$eval('#cities tbody tr', (rs) => rs.map((r) => r.dataset.code));
  check(JSON.stringify(cityRows) === JSON.stringify([CITY]), `a city token ranks its city only: ${cityRows}`);
  const cityCounties = (await city.page.$$eval('#counties tbody tr', (rs) => rs.map((r) => r.dataset.code))).sort();
  check(JSON.stringify(cityCounties) === JSON.stringify(ownCounties), 'and its counties only');
  await city.page.screenshot({ path: path.join(SHOTS, '5-city-token-1366.png') });
  await city.page.click('#signout');
  check(await city.page.evaluate(() => sessionStorage.getItem('plsw.token')) === null, 'signing out forgets the token');
  await city.context.close();

  console.log(`dashboard e2e: ${checks} checks passed; screenshots in ${SHOTS}`);
  await browser.close();
} catch (e) {
  console.error(e.message);
  await browser.close();
  process.exit(1);
}
