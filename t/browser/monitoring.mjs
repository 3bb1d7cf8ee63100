// The Monitoring screen (runbook 6) in a real browser; t/69-console-monitoring.t
// runs this (t/README). The shared parts are in lib.mjs. From the environment:
//   CONSOLE_ADMIN_EMAIL/_PASSWORD     a platform_admin (system.status)
//   CONSOLE_SECURITY_EMAIL/_PASSWORD  a security_admin (system.status)
//   CONSOLE_COMPLIANCE_EMAIL/_PASSWORD a compliance user (no system.status)
//   CONSOLE_SUPER_EMAIL/_PASSWORD     the superadmin (migration.run)
//   CONSOLE_WORKERS                   the stack's OPSD_WORKERS
//   CONSOLE_MIG_ORG                   the org whose migration waits at ready_for_cutover
//   CONSOLE_MAIL_FAILING/_OTHER       an allowlisted address whose message fails (no
//                                     SMTP peer), and one that is not allowlisted
//   CONSOLE_MON_CLAIMS                a file: what the page showed, as JSON, for the
//                                     Perl test to check against the server
// First the pure parts in node (prom.js, the rule table against alerts.yml),
// then the screen: it reads while shown, shows the pool, charts the traffic
// this script makes meanwhile (200s, 404s, a burst of 429s, two test
// emails), the 429 spike and the email failure alerts fire while others
// stay quiet; a bad reading interval is shown next to its field; reading
// stops when the screen is left; roles without system.status have no menu
// row; the superadmin sees the migration in flight.
import { request } from 'playwright-core';
import { readFileSync, writeFileSync } from 'node:fs';
import { env, BASE, check, page, expected, screen, signIn, signOut, run } from './lib.mjs';
import { parseProm } from '../../www/console/js/prom.js';
import { RULES, NOT_HERE, quantile, increaseBy, sample, windowOf } from '../../www/console/js/monitoring.js';

const WORKERS = Number(env.CONSOLE_WORKERS);
const claims = {};

// ---------------------------------------------------------------- node: the pure parts
{
	const p = parseProm('# HELP a x\n# TYPE a counter\na 1\nb{x="1",y="q\\"\\\\\\n"} 2.5 1700000000\n'
		+ 'c{le="+Inf"} +Inf\nd NaN\nbroken{x="1" 3\ne{x="1",x="2"} 1\n  f{__proto__="p",} -2e3\r\n');
	check('parseProm: samples in order, comments and broken lines left out',
		JSON.stringify(p.map((s) => s.name)) === '["a","b","c","d","f"]', JSON.stringify(p));
	check('parseProm: labels unescaped, timestamp dropped', p[1].labels.y === 'q"\\\n' && p[1].value === 2.5 && p[1].labels.x === '1');
	check('parseProm: +Inf, NaN, exponents, a trailing comma', p[2].value === Infinity && Number.isNaN(p[3].value)
		&& p[4].value === -2000 && Object.keys(p[4].labels).join() === '__proto__' && p[4].labels.__proto__ === 'p');

	// histogram_quantile as Prometheus: interpolated in the bucket, the
	// highest finite bound when the rank falls in +Inf
	const b = [{ le: 0.1, count: 50 }, { le: 1, count: 90 }, { le: 10, count: 100 }, { le: Infinity, count: 100 }];
	check('quantile interpolates like histogram_quantile', Math.abs(quantile(0.5, b) - 0.1) < 1e-9
		&& Math.abs(quantile(0.7, b) - 0.55) < 1e-9 && Math.abs(quantile(0.99, b) - 9.1) < 1e-9, quantile(0.99, b));
	check('quantile: the +Inf bucket answers the highest finite bound', quantile(0.99, [{ le: 1, count: 1 }, { le: Infinity, count: 10 }]) === 1);

	// counter deltas: a series new in the later read counts from 0; a reset
	const s1 = sample('opsd_start_time_seconds 100\nx{l="a"} 5\nx{l="b"} 7\n', 0);
	const s2 = sample('opsd_start_time_seconds 100\nx{l="a"} 9\nx{l="b"} 3\nx{l="c"} 2\n', 10000);
	const m = increaseBy(s1, s2, 'x', 'l');
	check('increase: delta, reset (the new value) and a new series from 0', m.get('a') === 4 && m.get('b') === 3 && m.get('c') === 2,
		JSON.stringify([...m]));
	const s3 = sample('opsd_start_time_seconds 200\nx{l="a"} 6\n', 20000);
	check('increase: a new master start is a reset of every counter', increaseBy(s2, s3, 'x', 'l').get('a') === 6);
	check('windowOf: the oldest read within the range', windowOf([s1, s2, s3], 15000).a === s2 && windowOf([s1], 60000) === null);

	// the rule table against conf/prometheus/alerts.yml: every alert either
	// evaluated or listed as not, with the yml's range, for and thresholds
	const yml = readFileSync(new URL('../../conf/prometheus/alerts.yml', import.meta.url), 'utf8');
	const rules = {};
	for (const part of yml.split(/^\s*- alert:\s*/m).slice(1)) {
		const name = part.match(/^(\S+)/)[1];
		const expr = (part.match(/expr:\s*\|?\s*\n?([\s\S]*?)\n\s*for:/) || [])[1] || '';
		rules[name] = { expr, for: (part.match(/^\s*for:\s*(\S+)/m) || [])[1] };
	}
	const names = [...RULES.map((r) => r.alert), ...NOT_HERE.map((r) => r.alert)];
	check('every alert of alerts.yml is evaluated or listed as not evaluated, once',
		JSON.stringify([...names].sort()) === JSON.stringify(Object.keys(rules).sort()), `${names} vs ${Object.keys(rules)}`);
	for (const r of RULES) {
		const y = rules[r.alert] || { expr: '' };
		const ranges = [...y.expr.matchAll(/\[(\d+)m\]/g)].map((x) => Number(x[1]) * 60000);
		const limits = r.limits.every((l) => new RegExp(`(?:>|==)\\s*${String(l).replace('.', '\\.')}(?![\\d.])`).test(y.expr));
		check(`${r.alert}: range, for and thresholds as in alerts.yml`, y.for === r.for && limits
			&& (r.range ? ranges.length > 0 && ranges.every((x) => x === r.range) : ranges.length === 0),
		`yml for ${y.for} ranges ${ranges} expr ${y.expr}`);
	}
}

// ---------------------------------------------------------------- the browser
const metricsReads = [];
page.on('request', (r) => {
	const u = new URL(r.url());
	if (u.pathname === '/metrics') metricsReads.push(Date.now());
});
const row = (name) => page.locator(`#mon-alerts tr[data-alert="${name}"]`);
const stateOf = async (name) => row(name).getAttribute('data-state');
const fig = (id) => page.locator(`#chart-${id}`);
const num = async (loc, attr) => Number(await loc.getAttribute(attr));
async function until(what, f, ms = 20000) {
	const end = Date.now() + ms;
	for (;;) {
		const v = await f().catch(() => false);
		if (v || Date.now() > end) return v;
		await page.waitForTimeout(100);
	}
}

await run(async () => {
	// ---- platform_admin, a runbook 6 role: from a deep link
	expected.push({ path: '/auth/me', status: 401 });
	await page.goto(`${BASE}/console/#/monitoring`);
	await signIn(env.CONSOLE_ADMIN_EMAIL, env.CONSOLE_ADMIN_PASSWORD, 'platform_admin');
	await page.locator('#mon-alerts').waitFor();
	const nav = await page.locator('#nav').innerText();
	check('platform_admin has the Monitoring menu row', /Monitoring/.test(nav), nav);
	await until('first read', async () => /quiet|firing/.test(await page.locator('#mon-alerts-summary').innerText()));
	check('the first read evaluates the gauge rule', await stateOf('OpsdNotReady') === 'quiet');
	await screen('monitoring');

	// a bad interval, next to its field; then 2 s, with the keyboard
	const every = page.locator('#mon-every');
	await every.getByLabel('Read every (seconds)').fill('1');
	await every.getByRole('button', { name: 'Apply' }).click();
	const err = every.locator('[data-field="every"] .field-error');
	check('a reading interval of 1 s is refused next to its field', /2 to 60/.test(await err.innerText()), await every.innerText());
	check('  and the field is marked invalid', await every.getByLabel('Read every (seconds)').getAttribute('aria-invalid') === 'true');
	await screen('monitoring-error');
	await every.getByLabel('Read every (seconds)').fill('2');
	await every.getByLabel('Read every (seconds)').press('Enter');
	check('2 s is taken', /Reading every 2 s/.test(await every.locator('.form-status').innerText()));
	check('platform_admin has no migration list (migration.run is not its)', await page.locator('#mon-migrations').count() === 0
		&& /needs migration\.run/.test(await page.locator('main').innerText()));

	// the pool, against GET /status
	const anon = await request.newContext({ baseURL: BASE, ignoreHTTPSErrors: true });
	const st = await (await anon.get('/status')).json();
	const shown = page.locator('#pool-workers');
	claims.workersShown = await num(shown, 'data-value');
	claims.workersMax = await num(shown, 'data-max');
	check(`the pool shows ${WORKERS} workers of ${WORKERS}, as GET /status`, claims.workersShown === WORKERS
		&& claims.workersMax === WORKERS && st.totalProcesses === WORKERS, `${await shown.innerText()} / ${JSON.stringify(st)}`);
	check('  busy and idle add up', /^\d+ busy, \d+ idle$/.test(await page.locator('#pool-busy').innerText()));
	await page.locator('summary', { hasText: 'Each worker' }).focus();
	await page.keyboard.press('Enter');
	await page.locator('#pool-processes tbody tr').first().waitFor();
	check('Each worker opens with the keyboard: one row per worker', await page.locator('#pool-processes tbody tr').count() === WORKERS);

	// ---- traffic while the screen reads: 200s and 404s signed in, two test
	// emails (one fails: no SMTP peer; one is suppressed), a 429 burst. The
	// screen is opened afresh first: its rules' window starts at its first
	// read, and the checks above (slow under ASan) must not dilute the burst.
	await page.getByRole('link', { name: 'Legal' }).click();
	await page.locator('h1', { hasText: 'Legal' }).waitFor();
	await page.getByRole('link', { name: 'Monitoring' }).click();
	await page.locator('#mon-alerts').waitFor();
	await until('first read of the fresh screen', async () => /quiet|firing/.test(await page.locator('#mon-alerts-summary').innerText()));
	const user = await request.newContext({ baseURL: BASE, ignoreHTTPSErrors: true });
	const li = await user.post('/auth/login', { data: { email: env.CONSOLE_ADMIN_EMAIL, password: env.CONSOLE_ADMIN_PASSWORD } });
	const csrf = (await li.json()).csrfToken;
	const before = { requests: await num(fig('requests'), 'data-total'), limited: await num(fig('limited'), 'data-total') };
	let n200 = 0;
	let n404 = 0;
	let n429 = 0;
	for (let i = 0; i < 20; i++) if ((await user.get('/auth/me')).status() === 200) n200++;
	for (let i = 0; i < 10; i++) if ((await user.get(`/no/such/path/${i}`)).status() === 404) n404++;
	const mail = async (to) => (await user.post('/email/test', { data: { to }, headers: { 'X-CSRF-Token': csrf } })).status();
	check('two test emails queued (202) or suppressed', [202, 200].includes(await mail(env.CONSOLE_MAIL_FAILING))
		&& [202, 200].includes(await mail(env.CONSOLE_MAIL_OTHER)));
	const burst = await Promise.all(Array.from({ length: 60 }, () => anon.get('/legal').then((r) => r.status())));
	n429 = burst.filter((s) => s === 429).length;
	const burstAt = Date.now();
	check(`the anonymous burst got 429s (${n429} of 60)`, n429 >= 20);
	Object.assign(claims, { n200, n404, n429 });

	// the interval holding the traffic: a non-zero rate in the caption
	const seen = await until('request rate', () => fig('requests').evaluate((f) =>
		(Number(f.dataset.rate) > 0 ? f.querySelector('figcaption').textContent : null)), 10000);
	check('the request chart shows a non-zero rate in its caption', /^API requests: (?!0\/s)[\d.]+\/s/.test(seen || ''), seen);
	await until('429s counted', async () => (await num(fig('limited'), 'data-total')) - before.limited >= n429, 15000);
	const limitedTotal = await num(fig('limited'), 'data-total');
	check(`the 429 chart counts the burst (${limitedTotal - before.limited} ≥ ${n429})`, limitedTotal - before.limited >= n429);
	check('  with a non-zero peak rate', (await num(fig('limited'), 'data-peak')) > 0);
	check('  by the opsd layer', / opsd [1-9]\d*\.$/.test(await fig('limited').locator('figcaption').innerText()),
		await fig('limited').locator('figcaption').innerText());
	const reqTotal = await num(fig('requests'), 'data-total');
	check(`the request chart counts the 200s, 404s and 429s (${reqTotal - before.requests} ≥ ${n200 + n404 + n429})`,
		reqTotal - before.requests >= n200 + n404 + n429);

	check('OpsdRateLimitedSpike fires', await until('spike', async () => await stateOf('OpsdRateLimitedSpike') === 'firing'),
		await row('OpsdRateLimitedSpike').innerText());
	check('  its value names the opsd layer over 0.5/s', /opsd ([1-9]|0\.[5-9])[\d.]*\/s/.test(await row('OpsdRateLimitedSpike').innerText()),
		await row('OpsdRateLimitedSpike').innerText());
	check('OpsdEmailSendFailures fires once the message failed', await until('email', async () =>
		await stateOf('OpsdEmailSendFailures') === 'firing', 30000), await row('OpsdEmailSendFailures').innerText());
	await until('suppressed', async () => /suppressed [1-9]/.test(await fig('emails').locator('figcaption').innerText()), 10000);
	const emailCap = await fig('emails').locator('figcaption').innerText();
	check('the email chart counts the failed and the suppressed message', /failed [1-9]/.test(emailCap) && /suppressed [1-9]/.test(emailCap), emailCap);
	for (const quiet of ['OpsdWorkersCrashing', 'OpsdHighErrorRate', 'OpsdRequestTimeouts'])
		check(`${quiet} stays quiet`, await stateOf(quiet) === 'quiet', await row(quiet).innerText());
	check('the summary counts the firing alerts', /^[2-9]\d* firing, \d+ quiet\.$/.test(await page.locator('#mon-alerts-summary').innerText()),
		await page.locator('#mon-alerts-summary').innerText());
	check('firing alerts are listed first', (await page.locator('#mon-alerts tbody tr').first().getAttribute('data-state')) === 'firing');
	claims.page = {
		requestsTotal: await num(fig('requests'), 'data-total'),
		limitedTotal: await num(fig('limited'), 'data-total'),
		limitedOpsd: await num(fig('limited'), 'data-total-opsd'),
		emailsFailed: await num(fig('emails'), 'data-total-failed'),
		emailsSuppressed: await num(fig('emails'), 'data-total-suppressed'),
		workersShown: claims.workersShown,
	};
	await screen('monitoring-firing');
	check('the URL names the screen only', new URL(page.url()).hash === '#/monitoring' && !page.url().includes('?'), page.url());

	// ---- leaving the screen stops the reads
	await page.getByRole('link', { name: 'Legal' }).click();
	await page.locator('#main h1', { hasText: 'Legal' }).waitFor();
	const left = metricsReads.length;
	await page.waitForTimeout(5000);
	check('no /metrics read after the screen was left', metricsReads.length === left, `${metricsReads.length - left} reads`);
	await signOut();

	// ---- compliance holds no system.status: no menu row, no read
	await page.waitForTimeout(Math.max(0, burstAt + 6000 - Date.now())); // the anonymous bucket refills for the sign-in
	await signIn(env.CONSOLE_COMPLIANCE_EMAIL, env.CONSOLE_COMPLIANCE_PASSWORD, 'compliance');
	check('compliance has no Monitoring menu row', !/Monitoring/.test(await page.locator('#nav').innerText()),
		await page.locator('#nav').innerText());
	const reads = metricsReads.length;
	await page.goto(`${BASE}/console/#/monitoring`);
	await page.locator('#main h1', { hasText: 'Monitoring' }).waitFor();
	await page.waitForTimeout(500);
	check('  and #/monitoring says the role has no access, without reading', /does not give access/.test(await page.locator('main').innerText())
		&& metricsReads.length === reads);
	await screen('monitoring-denied');
	await signOut();

	// ---- security_admin, the on-call of runbook 4, also holds system.status
	await signIn(env.CONSOLE_SECURITY_EMAIL, env.CONSOLE_SECURITY_PASSWORD, 'security_admin');
	check('security_admin has the Monitoring menu row', /Monitoring/.test(await page.locator('#nav').innerText()));
	await page.getByRole('link', { name: 'Monitoring' }).click();
	await until('read', async () => /quiet|firing/.test(await page.locator('#mon-alerts-summary').innerText()));
	check('  and the screen reads for it', Number(await page.locator('#pool-workers').getAttribute('data-value')) === WORKERS);
	await signOut();

	// ---- the superadmin sees the migration in flight, and the filter
	await signIn(env.CONSOLE_SUPER_EMAIL, env.CONSOLE_SUPER_PASSWORD, 'superadmin');
	await page.goto(`${BASE}/console/#/monitoring`);
	const migs = page.locator('#mon-migrations');
	await migs.locator('table, p').first().waitFor();
	await migs.locator('tr', { hasText: env.CONSOLE_MIG_ORG }).first().waitFor().catch(() => {});
	const mrow = migs.locator('tr', { hasText: env.CONSOLE_MIG_ORG }).first();
	claims.migrationStatus = await mrow.getAttribute('data-status').catch(() => null);
	check('the migration in flight is listed with its status', claims.migrationStatus === 'ready_for_cutover', await migs.innerText());
	check('  with a link to the Migration screen (the screen name only)',
		await page.locator('#mon-mig-link').getAttribute('href') === '#/migration');
	await screen('monitoring-migrations');
	const mf = page.locator('#mon-mig-filter');
	await mf.getByLabel('Status').selectOption('completed');
	await mf.getByRole('button', { name: 'Show' }).click();
	await migs.getByText('No migration is completed.').waitFor().catch(() => {});
	check('the completed filter lists none', /No migration is completed/.test(await migs.innerText()), await migs.innerText());
	await mf.getByLabel('Status').selectOption('ready_for_cutover');
	await mf.getByLabel('Status').press('Tab'); // the keyboard: Show is next
	await page.keyboard.press('Enter');
	await migs.locator('tr', { hasText: env.CONSOLE_MIG_ORG }).first().waitFor().catch(() => {});
	check('the ready_for_cutover filter lists it', (await migs.innerText()).includes(env.CONSOLE_MIG_ORG), await migs.innerText());
	await signOut();
	await anon.dispose();
	await user.dispose();
	writeFileSync(env.CONSOLE_MON_CLAIMS, JSON.stringify(claims));
});
