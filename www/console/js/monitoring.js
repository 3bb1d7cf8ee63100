// The Monitoring screen (runbook 6): while it is shown it reads GET /metrics
// and GET /status?full every few seconds (5 by default, 2 to 60 as the
// operator sets it) and stops when it is left. From the reads:
// - the alert rules of conf/prometheus/alerts.yml the console can evaluate
//   from two reads (RULES below, one row per alert, the yml's thresholds),
//   each firing or quiet with its value; the rules it cannot evaluate are
//   listed with the reason (NOT_HERE);
// - small charts (inline SVG made with DOM calls, colours from CSS classes)
//   of the API request rate, 5xx, 429s by layer and email outcomes, each
//   with a caption of its latest values and a table of values for screen
//   readers; rates are counter deltas between consecutive reads;
// - the worker pool as /status shows it;
// - with migration.run, the tenant migrations in flight (GET /migration,
//   one request per unfinished status, or one status paged), reloaded
//   when opsd_migrations_total moves, with a link to the Migration screen.
// Only loopback callers read /status and /metrics without system.status;
// the menu shows this screen to roles holding it.

import { h, field, formValues, formStatus, showError, clearErrors, time } from './ui.js';
import { parseProm } from './prom.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
const EVERY_S = 5;
const EVERY_MIN = 2;
const EVERY_MAX = 60;
const KEEP_MS = 15 * 60 * 1000; // the longest range of a rule below
const CHART_POINTS = 36; // intervals drawn
const TABLE_ROWS = 10; // intervals in a chart's table of values
const MIN = 60 * 1000;

// Routes the rules leave out (route!~"metrics|status|healthz|readyz"):
// monitoring traffic, this screen's own reads among it.
const MONITORING = /^(?:metrics|status|healthz|readyz)$/;
const api = (l) => !MONITORING.test(l.route || '');
// OpsdHighLatency also leaves out the bulk routes, slow by design.
const LATENCY_OUT = /^(?:export|compliance_export|compliance_archive|metrics|status|healthz|readyz)$/;

export const MIGRATION_STATUSES = ['pending', 'copying', 'catching_up', 'verifying', 'ready_for_cutover',
	'cutting_over', 'completed', 'aborting', 'aborted', 'failed'];
export const IN_FLIGHT = MIGRATION_STATUSES.filter((s) => !['completed', 'aborted', 'failed'].includes(s));

// ------------------------------------------------------------ samples

const seriesKey = (s) => s.name + JSON.stringify(Object.entries(s.labels).sort());

// One read of /metrics at time t (ms): its series and the master's start
// time (a new one means every counter started again at 0).
export function sample(text, t) {
	const series = parseProm(text);
	const start = series.find((s) => s.name === 'opsd_start_time_seconds');
	return { t, series, start: start ? start.value : null };
}

// The increase of counter `name` between reads a and b, summed over the
// series `keep` accepts, by the value of label `by` (a Map; '' without
// `by`). A series absent from a counts from 0 (every counter starts at 0
// with the master); a value that went down, or a new master, is a reset:
// the increase is the new value, as Prometheus counts it.
export function increaseBy(a, b, name, by = null, keep = () => true) {
	const before = new Map();
	if (a.start === b.start) for (const s of a.series) if (s.name === name) before.set(seriesKey(s), s.value);
	const out = new Map();
	for (const s of b.series) {
		if (s.name !== name || !keep(s.labels)) continue;
		const o = before.get(seriesKey(s)) ?? 0;
		const d = s.value >= o ? s.value - o : s.value;
		const k = by ? s.labels[by] ?? '' : '';
		out.set(k, (out.get(k) || 0) + d);
	}
	return out;
}

export function increase(a, b, name, keep) {
	let n = 0;
	for (const v of increaseBy(a, b, name, null, keep).values()) n += v;
	return n;
}

function gauge(b, name) {
	const s = b.series.find((x) => x.name === name);
	return s ? s.value : null;
}

// histogram_quantile as Prometheus computes it, over cumulative buckets
// [{le, count}] (le a number, the last one Infinity).
export function quantile(q, buckets) {
	const b = [...buckets].sort((x, y) => x.le - y.le);
	if (b.length < 2 || b[b.length - 1].le !== Infinity) return NaN;
	const total = b[b.length - 1].count;
	if (!(total > 0)) return NaN;
	const rank = q * total;
	let i = b.findIndex((x) => x.count >= rank);
	if (i < 0 || i === b.length - 1) return b[b.length - 2].le;
	if (i === 0 && b[0].le <= 0) return b[0].le;
	const lo = i === 0 ? 0 : b[i - 1].le;
	const prev = i === 0 ? 0 : b[i - 1].count;
	return lo + (b[i].le - lo) * (rank - prev) / (b[i].count - prev);
}

const leNum = (le) => (le === '+Inf' || le === 'Inf' ? Infinity : Number(le));

// What a rule sees: the older read a, the latest b, the seconds between.
function view(a, b) {
	const secs = (b.t - a.t) / 1000;
	return {
		a, b, secs,
		inc: (name, keep) => increase(a, b, name, keep),
		incBy: (name, by, keep) => increaseBy(a, b, name, by, keep),
		rate: (name, keep) => (secs > 0 ? increase(a, b, name, keep) / secs : NaN),
		gauge: (name) => gauge(b, name),
	};
}

// ------------------------------------------------------------ the rules

const num = (v, digits = 3) => (Number.isFinite(v) ? String(Number(v.toPrecision(digits))) : '—');
const perS = (v) => `${num(v)}/s`;
const count = (v) => (Number.isFinite(v) ? String(Math.round(v)) : '—');

// A rule by label (`max by (action)`, `sum by (layer)`): it fires when a
// label's value is over the threshold. The value names each label
// ("nginx 0/s, opsd 2.5/s"), or with `short` only those above 0 ("0 of
// each" when none is).
function byLabel(m, fmt, over, short = true) {
	const parts = [...m.entries()].sort(([x], [y]) => (x < y ? -1 : 1));
	const shown = short ? parts.filter(([, v]) => v > 0) : parts;
	return {
		firing: parts.some(([, v]) => over(v)),
		value: shown.length ? shown.map(([k, v]) => `${k} ${fmt(v)}`).join(', ') : parts.length > 1 ? `0 for each of ${parts.length}` : parts.length ? '0' : 'no series',
		n: Math.max(0, ...parts.map(([, v]) => v)),
	};
}

const counted = (n, l) => ({ firing: n > l, n, value: count(n) });

const audit = (actions) => (l) => actions.includes(l.action);
const auditIncrease = (w, actions) => w.incBy('opsd_audit_events_total', 'action', audit(actions));
const SECURITY_ACTIONS = ['security.sessions_flushed', 'security.blocklist_added', 'security.blocklist_removed',
	'security.tokens_revoked', 'user.disabled', 'user.enabled'];

// The rules of conf/prometheus/alerts.yml that two reads of /metrics
// decide, one row per alert (`alert` is its name in the yml): its
// severity, range (the [5m] of its rate or increase; 0 for a gauge), `for`
// and thresholds (`limits`, the numbers its expression compares with) as
// there, the threshold in words, and its expression over the two reads
// (view() above: rates are the increase over the seconds between them).
// eval(w, limits) answers { firing, value (text), n (a number) }.
export const RULES = [
	{ alert: 'OpsdNotReady', severity: 'critical', range: 0, for: '2m', limits: [0], threshold: '= 0',
		what: 'opsd_ready: MariaDB answers and the schema is current',
		eval: (w, [l]) => {
			const v = w.gauge('opsd_ready');
			return { firing: v === l, value: v === null ? 'no value' : String(v), n: v };
		} },
	{ alert: 'OpsdHighErrorRate', severity: 'critical', range: 5 * MIN, for: '2m', limits: [0.05, 5],
		threshold: '> 5 % of API answers and > 5 of them',
		what: '5xx share of API answers (monitoring routes left out)',
		eval: (w, [share, least]) => {
			const all = w.inc('opsd_http_requests_total', api);
			const bad = w.inc('opsd_http_requests_total', (l) => api(l) && /^5\d\d$/.test(l.status || ''));
			const ratio = all > 0 ? bad / all : NaN;
			return { firing: ratio > share && bad > least, n: ratio,
				value: all > 0 ? `${num(ratio * 100)} % (${count(bad)} of ${count(all)})` : 'no API answer' };
		} },
	{ alert: 'OpsdHighLatency', severity: 'warning', range: 5 * MIN, for: '10m', limits: [1], threshold: 'p99 > 1 s',
		what: 'p99 of API request durations (exports, batch archive and monitoring left out)',
		eval: (w, [l]) => {
			const m = w.incBy('opsd_http_request_duration_seconds_bucket', 'le', (x) => !LATENCY_OUT.test(x.route || ''));
			const p99 = quantile(0.99, [...m.entries()].map(([le, c]) => ({ le: leNum(le), count: c })));
			return { firing: p99 > l, n: p99, value: Number.isFinite(p99) ? `${num(p99)} s` : 'no API request' };
		} },
	{ alert: 'OpsdPoolSaturated', severity: 'warning', range: 5 * MIN, for: '5m', limits: [0], threshold: '> 0 times',
		what: 'max-children-reached: no idle worker and the pool could not grow',
		eval: (w, [l]) => counted(w.inc('opsd_max_children_reached_total'), l) },
	{ alert: 'OpsdRequestTimeouts', severity: 'warning', range: 10 * MIN, for: '0m', limits: [0], threshold: '> 0 workers',
		what: 'workers killed at OPSD_REQUEST_TIMEOUT',
		eval: (w, [l]) => counted(w.inc('opsd_request_timeouts_total'), l) },
	{ alert: 'OpsdWorkersCrashing', severity: 'warning', range: 10 * MIN, for: '0m', limits: [3], threshold: '> 3 exits',
		what: 'workers that exited abnormally',
		eval: (w, [l]) => counted(w.inc('opsd_worker_restarts_total'), l) },
	{ alert: 'OpsdLogLinesDropped', severity: 'warning', range: 10 * MIN, for: '0m', limits: [0], threshold: '> 0 lines',
		what: 'log lines not written (the log\'s filesystem full or failing)',
		eval: (w, [l]) => counted(w.inc('opsd_log_lines_dropped_total'), l) },
	{ alert: 'OpsdPasswordChecksRefused', severity: 'warning', range: 10 * MIN, for: '5m', limits: [20], threshold: '> 20 refused',
		what: 'password checks refused with 503: every slot busy',
		eval: (w, [l]) => counted(w.inc('opsd_password_checks_total', (x) => x.outcome === 'refused'), l) },
	{ alert: 'OpsdRateLimitedSpike', severity: 'warning', range: 5 * MIN, for: '2m', limits: [0.5], threshold: '> 0.5/s in one layer',
		what: '429 refusals per second, by layer (nginx, opsd)',
		eval: (w, [l]) => {
			const m = w.incBy('opsd_rate_limited_total', 'layer');
			for (const [k, v] of m) m.set(k, v / w.secs);
			return byLabel(m, perS, (v) => v > l, false);
		} },
	{ alert: 'OpsdLoginFailures', severity: 'warning', range: 5 * MIN, for: '5m', limits: [0.5], threshold: '> 0.5/s (30 a minute)',
		what: 'failed logins per second (audit events, all hosts)',
		eval: (w, [l]) => {
			const v = w.rate('opsd_audit_events_total', audit(['auth.login_failed']));
			return { firing: v > l, n: v, value: perS(v) };
		} },
	{ alert: 'OpsdSecurityAction', severity: 'info', range: 10 * MIN, for: '0m', limits: [0], threshold: '> 0 of an action',
		what: 'sessions flushed, blocklist changed, tokens revoked, accounts disabled or enabled',
		eval: (w, [l]) => byLabel(auditIncrease(w, SECURITY_ACTIONS), count, (v) => v > l) },
	{ alert: 'OpsdNginxApplyFailing', severity: 'warning', range: 0, for: '1m', limits: [60], threshold: '> 60 s',
		what: 'seconds since this host\'s nginx was last found running the current include (the blocklist), by include',
		eval: (w, [l]) => {
			const m = new Map();
			for (const s of w.b.series) {
				if (s.name === 'opsd_nginx_apply_last_success_timestamp_seconds') m.set(s.labels.file || '', w.b.t / 1000 - s.value);
			}
			return byLabel(m, (v) => `${count(v)} s`, (v) => v > l, false);
		} },
	{ alert: 'OpsdMigrationFailed', severity: 'warning', range: 10 * MIN, for: '0m', limits: [0], threshold: '> 0',
		what: 'tenant migrations that ended failed',
		eval: (w, [l]) => counted(w.inc('opsd_migrations_total', (x) => x.status === 'failed'), l) },
	{ alert: 'OpsdMigrationLegalHoldOverride', severity: 'info', range: 10 * MIN, for: '0m', limits: [0], threshold: '> 0',
		what: 'migrations started with overrideLegalHold',
		eval: (w, [l]) => byLabel(auditIncrease(w, ['migration.legal_hold_override']), count, (v) => v > l) },
	{ alert: 'OpsdLegalDocumentPublished', severity: 'info', range: 10 * MIN, for: '0m', limits: [0], threshold: '> 0',
		what: 'legal document versions published',
		eval: (w, [l]) => byLabel(auditIncrease(w, ['legal.updated']), count, (v) => v > l) },
	{ alert: 'OpsdLegalHoldChanged', severity: 'info', range: 10 * MIN, for: '0m', limits: [0], threshold: '> 0 of an action',
		what: 'legal holds set or released',
		eval: (w, [l]) => byLabel(auditIncrease(w, ['compliance.legal_hold_set', 'compliance.legal_hold_released']), count, (v) => v > l) },
	{ alert: 'OpsdPiiStripBurst', severity: 'info', range: 15 * MIN, for: '0m', limits: [5], threshold: '> 5 batches',
		what: 'strip-PII batches',
		eval: (w, [l]) => byLabel(auditIncrease(w, ['compliance.pii_stripped']), count, (v) => v > l) },
	{ alert: 'OpsdComplianceExportBurst', severity: 'info', range: 15 * MIN, for: '0m', limits: [20], threshold: '> 20 exports',
		what: 'subject and org exports',
		eval: (w, [l]) => byLabel(auditIncrease(w, ['compliance.exported']), count, (v) => v > l) },
	{ alert: 'OpsdEmailSendFailures', severity: 'warning', range: 15 * MIN, for: '0m', limits: [0], threshold: '> 0 messages',
		what: 'messages that ended failed',
		eval: (w, [l]) => counted(w.inc('opsd_emails_total', (x) => x.outcome === 'failed'), l) },
	{ alert: 'OpsdEmailDeliveryStalled', severity: 'warning', range: 15 * MIN, for: '15m', limits: [0, 0],
		threshold: 'retries > 0 and nothing sent',
		what: 'retries while no message was sent',
		eval: (w, [lr, ls]) => {
			const retry = w.inc('opsd_emails_total', (x) => x.outcome === 'retry');
			const sent = w.inc('opsd_emails_total', (x) => x.outcome === 'sent');
			return { firing: retry > lr && !(sent > ls), n: retry, value: `${count(retry)} retries, ${count(sent)} sent` };
		} },
];

// The rules of alerts.yml this screen does not evaluate, and why.
export const NOT_HERE = [
	{ alert: 'OpsdDown', why: 'its `up` is the Prometheus server\'s record of its own scrapes of each host, which the '
		+ 'console does not see. This screen\'s own reads are shown under "Reading": a failed read says so there.' },
];

// The oldest kept read within `range` ms of the latest, and the latest;
// null while there is only one read (a gauge rule needs only the latest).
export function windowOf(samples, range) {
	const b = samples[samples.length - 1];
	if (!b) return null;
	if (!range) return view(b, b);
	const a = samples.find((s) => s.t >= b.t - range);
	return a && a !== b ? view(a, b) : null;
}

// ------------------------------------------------------------ the charts

// Each chart: the counters it draws, as the increase of each series
// between two consecutive reads (drawn per second).
const CHARTS = [
	{ id: 'requests', title: 'API requests', note: 'monitoring routes left out, as the alert rules do',
		series: [{ key: 'all', label: 'requests', cls: 'all' }],
		point: (w) => ({ all: w.inc('opsd_http_requests_total', api) }) },
	{ id: 'errors', title: '5xx answers', note: 'API routes',
		series: [{ key: '5xx', label: '5xx', cls: 'failed' }],
		point: (w) => ({ '5xx': w.inc('opsd_http_requests_total', (l) => api(l) && /^5\d\d$/.test(l.status || '')) }) },
	{ id: 'limited', title: '429 refusals', note: 'by the layer that refused them',
		series: [{ key: 'nginx', label: 'nginx', cls: 'nginx' }, { key: 'opsd', label: 'opsd', cls: 'opsd' }],
		point: (w) => Object.fromEntries(w.incBy('opsd_rate_limited_total', 'layer')) },
	{ id: 'emails', title: 'Email outcomes', note: 'delivery attempts by outcome',
		series: ['sent', 'failed', 'retry', 'suppressed'].map((k) => ({ key: k, label: k, cls: k })),
		point: (w) => Object.fromEntries(w.incBy('opsd_emails_total', 'outcome')) },
];

function svg(tag, attrs) {
	const el = document.createElementNS(SVG_NS, tag);
	for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
	return el;
}

const clock = (t) => new Date(t).toLocaleTimeString();
const clockEl = (t) => h('time', { datetime: new Date(t).toISOString(), title: `${new Date(t).toISOString()} (UTC)` }, clock(t));

function chartBox(c) {
	const W = 300;
	const H = 60;
	const cap = h('figcaption', { id: `chart-${c.id}-cap` }, `${c.title}: waiting for a second read.`);
	const pic = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img',
		'aria-label': `${c.title} per second: no value yet` });
	pic.append(svg('line', { class: 'axis', x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, 'vector-effect': 'non-scaling-stroke' }));
	const lines = c.series.map((s) => {
		const l = svg('polyline', { class: `line s-${s.cls}`, fill: 'none', 'stroke-width': 2,
			'stroke-linejoin': 'round', 'vector-effect': 'non-scaling-stroke', points: '' });
		pic.append(l);
		return l;
	});
	const scale = h('p', { class: 'chart-scale', 'aria-hidden': 'true' }, 'peak —');
	const legend = c.series.length > 1
		? h('ul', { class: 'chart-legend', 'aria-hidden': 'true' }, c.series.map((s) => h('li', null, h('span', { class: `chart-swatch w-${s.cls}` }), s.label)))
		: null;
	const body = h('tbody');
	const values = h('table', { class: 'sr-only' },
		h('caption', null, `${c.title} per second, last ${TABLE_ROWS} reads`),
		h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Read at'), c.series.map((s) => h('th', { scope: 'col' }, s.label)))),
		body);
	const figure = h('figure', { class: 'chart', id: `chart-${c.id}`, 'data-rate': '', 'data-total': '0', 'data-peak': '0' },
		cap, pic, scale, legend, h('p', { class: 'hint' }, c.note), values);

	// points: [{ t, secs, inc: {key: n} }], oldest first; totals: {key: n}
	const update = (points, totals, since) => {
		const shown = points.slice(-CHART_POINTS);
		const rate = (p, k) => (p.secs > 0 ? (p.inc[k] || 0) / p.secs : 0);
		let peak = 0;
		for (const p of shown) for (const s of c.series) peak = Math.max(peak, rate(p, s.key));
		const top = peak > 0 ? peak * 1.1 : 1;
		const t1 = shown.length ? shown[shown.length - 1].t : 0;
		const span = Math.max(1, shown.length ? t1 - shown[0].t + shown[0].secs * 1000 : 1);
		// steps: each interval's rate drawn flat from the read before to its read
		const x = (t) => (W - ((t1 - t) / span) * W).toFixed(1);
		c.series.forEach((s, i) => {
			lines[i].setAttribute('points', shown.map((p) => {
				const y = (H - 1 - (rate(p, s.key) / top) * (H - 4)).toFixed(1);
				return `${x(p.t - p.secs * 1000)},${y} ${x(p.t)},${y}`;
			}).join(' '));
		});
		const last = shown[shown.length - 1];
		if (!last) return;
		const sum = (o) => c.series.reduce((n, s) => n + (o[s.key] || 0), 0);
		const each = (f) => c.series.map((s) => `${s.label} ${f(s.key)}`).join(', ');
		const lastRate = sum(last.inc) / last.secs;
		const total = sum(totals);
		const words = c.series.length > 1
			? `${c.title}: ${each((k) => perS(rate(last, k)))} over the last ${num(last.secs, 2)} s; since ${clock(since)}: ${each((k) => count(totals[k] || 0))}.`
			: `${c.title}: ${perS(lastRate)} over the last ${num(last.secs, 2)} s; ${count(total)} since ${clock(since)}.`;
		cap.textContent = words;
		pic.setAttribute('aria-label', `${c.title} per second over the last ${shown.length} reads; ${words}`);
		scale.textContent = `peak ${perS(peak)} over the last ${shown.length} reads`;
		figure.dataset.rate = String(lastRate);
		figure.dataset.total = String(total);
		figure.dataset.peak = String(peak);
		for (const s of c.series) figure.setAttribute(`data-total-${s.key}`, String(totals[s.key] || 0));
		body.replaceChildren(...points.slice(-TABLE_ROWS).reverse().map((p) =>
			h('tr', null, h('td', null, clockEl(p.t)), c.series.map((s) => h('td', null, perS(rate(p, s.key)))))));
	};
	return { figure, update, c };
}

// ------------------------------------------------------------ the screen

export async function render(box, ctx) {
	const st = { every: EVERY_S, samples: [], points: [], totals: {}, since: null, held: {}, timer: null, busy: false, stopped: false };
	// a new interval starts now (a read under way schedules the next itself)
	const reading = readingSection(st, () => {
		clearTimeout(st.timer);
		if (!st.stopped && !st.busy) st.timer = setTimeout(tick, st.every * 1000);
	});
	const alerts = alertsSection();
	const charts = CHARTS.map(chartBox);
	const pool = poolSection();
	const migs = ctx.can('migration.run') ? migrationsSection(ctx) : null;
	box.append(reading.section, alerts.section,
		h('section', { 'aria-labelledby': 'mon-traffic-h' }, h('h2', { id: 'mon-traffic-h' }, 'Traffic'),
			h('p', null, 'Per second between consecutive reads; the numbers in each caption are the latest.'),
			h('div', { class: 'charts' }, charts.map((c) => c.figure))),
		pool.section,
		migs ? migs.section : h('section', { 'aria-labelledby': 'mon-mig-h' }, h('h2', { id: 'mon-mig-h' }, 'Migrations in flight'),
			h('p', null, 'Listing migrations needs migration.run (superadmin); their failures count in OpsdMigrationFailed above.')));

	const stop = () => {
		st.stopped = true;
		clearTimeout(st.timer);
		window.removeEventListener('hashchange', stop);
	};
	window.addEventListener('hashchange', stop);

	const readOnce = async () => {
		const t = Date.now();
		const [text, status] = await Promise.all([ctx.call('GET', '/metrics', { text: true }), ctx.call('GET', '/status', { query: { full: 'true' } })]);
		if (st.stopped) return;
		const s = sample(text, t);
		const prev = st.samples[st.samples.length - 1];
		st.samples.push(s);
		while (st.samples.length > 2 && st.samples[0].t < t - KEEP_MS) st.samples.shift();
		if (!st.since) st.since = t;
		if (prev) {
			const w = view(prev, s);
			for (const c of CHARTS) {
				const inc = c.point(w);
				st.points.push({ chart: c.id, t, secs: w.secs, inc });
				const tot = (st.totals[c.id] ||= {});
				for (const [k, v] of Object.entries(inc)) tot[k] = (tot[k] || 0) + v;
			}
			st.points = st.points.slice(-CHARTS.length * Math.max(CHART_POINTS, TABLE_ROWS));
			for (const c of charts) c.update(st.points.filter((p) => p.chart === c.c.id), st.totals[c.c.id] || {}, st.since);
			if (migs && increase(prev, s, 'opsd_migrations_total') > 0) migs.reload().catch((e) => migs.failed(e));
		}
		alerts.update(st, t);
		pool.update(status);
		reading.done(t);
	};

	async function tick() {
		if (st.stopped) return;
		if (!box.isConnected) return stop();
		if (!document.hidden) {
			st.busy = true;
			try {
				await readOnce();
			} catch (err) {
				reading.failed(err);
			} finally {
				st.busy = false;
			}
		}
		if (st.stopped || !box.isConnected) return stop();
		clearTimeout(st.timer);
		st.timer = setTimeout(tick, st.every * 1000);
	}

	await Promise.all([tick(), migs ? migs.reload().catch((e) => migs.failed(e)) : null]);
}

function readingSection(st, changed) {
	const line = h('p', { id: 'mon-reading' }, 'Reading /metrics and /status…');
	const problem = h('p', { id: 'mon-read-error', class: 'form-status', role: 'alert' });
	const form = h('form', { id: 'mon-every', class: 'inline', novalidate: true },
		field({ label: 'Read every (seconds)', name: 'every', type: 'number', value: String(st.every),
			hint: `${EVERY_MIN} to ${EVERY_MAX}; reading stops when you leave this screen` }),
		h('button', { type: 'submit' }, 'Apply'),
		formStatus());
	form.querySelector('input').setAttribute('min', String(EVERY_MIN));
	form.querySelector('input').setAttribute('max', String(EVERY_MAX));
	form.addEventListener('submit', (ev) => {
		ev.preventDefault();
		clearErrors(form);
		const raw = formValues(form).every;
		const v = Number(raw);
		if (!/^\d+$/.test(raw) || v < EVERY_MIN || v > EVERY_MAX) {
			const msg = `a whole number of seconds from ${EVERY_MIN} to ${EVERY_MAX}`;
			return showError(form, { fields: { every: msg }, describe: () => `Read every: ${msg}.` });
		}
		st.every = v;
		const status = form.querySelector('.form-status');
		status.className = 'form-status ok';
		status.textContent = `Reading every ${v} s.`;
		changed();
	});
	const section = h('section', { 'aria-labelledby': 'mon-reading-h' },
		h('h2', { id: 'mon-reading-h' }, 'Reading'), line, problem, form);
	return {
		section,
		done: (t) => {
			line.replaceChildren(`Reading /metrics and /status every ${st.every} s since `, clockEl(st.since),
				'; last read at ', clockEl(t), ` (${st.samples.length} kept, the oldest from `, clockEl(st.samples[0].t), ').');
			if (problem.textContent) {
				problem.className = 'form-status';
				problem.textContent = '';
			}
		},
		failed: (err) => {
			const text = `The last read failed: ${err.describe ? err.describe() : String(err.message || err)}`;
			if (problem.textContent !== text) {
				problem.className = 'form-status error';
				problem.textContent = text;
			}
		},
	};
}

const fmtWindow = (ms) => (ms >= MIN ? `${num(ms / MIN, 2)} min` : `${Math.round(ms / 1000)} s`);

function alertsSection() {
	const summary = h('p', { id: 'mon-alerts-summary', role: 'status' }, 'Waiting for the first read.');
	const rows = RULES.map((r) => {
		const state = h('span', { class: 'alert-state waiting' }, 'waiting');
		const cells = { state, value: h('td', null, '—'), window: h('td', null, r.range ? `${fmtWindow(r.range)} rule` : 'latest read'),
			for: h('td', null, r.for) };
		const tr = h('tr', { 'data-alert': r.alert, 'data-state': 'waiting' },
			h('th', { scope: 'row' }, h('code', null, r.alert), h('br'), h('small', { class: 'hint' }, r.what)),
			h('td', null, state),
			cells.value,
			h('td', null, r.threshold),
			h('td', null, r.severity),
			cells.window,
			cells.for);
		return { r, tr, cells };
	});
	const tbody = h('tbody', null, rows.map((x) => x.tr));
	const wrap = h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': 'Alert rules evaluated here' },
		h('table', { id: 'mon-alerts' },
			h('caption', null, 'Alert rules of alerts.yml evaluated over this screen\'s reads'),
			h('thead', null, h('tr', null, ['Alert', 'State', 'Value', 'Threshold', 'Severity', 'Window', 'For'].map((x) => h('th', { scope: 'col' }, x)))),
			tbody));
	const section = h('section', { 'aria-labelledby': 'mon-alerts-h' },
		h('h2', { id: 'mon-alerts-h' }, 'Alerts'),
		h('p', null, 'The rules of conf/prometheus/alerts.yml, with their thresholds, evaluated over two of this screen\'s reads: '
			+ 'the latest and the oldest within the rule\'s range. Firing here means the expression holds now.'),
		summary, wrap,
		h('h3', null, 'Not evaluated here'),
		h('ul', { id: 'mon-not-here' }, NOT_HERE.map((x) => h('li', null, h('code', null, x.alert), `: ${x.why}`))),
		h('h3', null, 'How this differs from Prometheus'),
		h('ul', null,
			h('li', null, 'Prometheus fires an alert once its expression has held for the rule\'s "For"; this screen shows the expression now, and how long it has held here.'),
			h('li', null, 'Until the screen has been open for a rule\'s range (5, 10 or 15 min) the window is shorter: the time since the first read. Leaving the screen starts again.'),
			h('li', null, 'A rate is the increase divided by the seconds between the two reads; Prometheus\' rate() also extrapolates to the edges of its range.'),
			h('li', null, 'The reads go to the opsd host behind this address; Prometheus evaluates every host it scrapes. Audit-event counts are cluster-wide either way.')));
	return {
		section,
		update(st, t) {
			let firing = 0;
			let quiet = 0;
			for (const { r, tr, cells } of rows) {
				const w = windowOf(st.samples, r.range);
				if (!w) continue;
				const x = r.eval(w, r.limits);
				const s = x.firing ? 'firing' : 'quiet';
				if (x.firing) {
					firing++;
					st.held[r.alert] ??= t;
				} else {
					quiet++;
					delete st.held[r.alert];
				}
				tr.dataset.state = s;
				tr.dataset.value = String(x.n);
				cells.state.className = `alert-state ${s}`;
				cells.state.textContent = s;
				cells.value.textContent = x.value;
				if (r.range) cells.window.textContent = `${fmtWindow(r.range)} rule; ${fmtWindow(w.b.t - w.a.t)} here`;
				cells.for.textContent = x.firing ? `${r.for}; held ${fmtWindow(t - st.held[r.alert])} here` : r.for;
			}
			// firing rows first, each group in the yml's order
			const order = [...rows.filter((x) => x.tr.dataset.state === 'firing'), ...rows.filter((x) => x.tr.dataset.state !== 'firing')];
			if (order.some((x, i) => tbody.children[i] !== x.tr)) tbody.append(...order.map((x) => x.tr));
			const waiting = RULES.length - firing - quiet;
			const text = `${firing} firing, ${quiet} quiet` + (waiting ? `, ${waiting} waiting for a second read` : '') + '.';
			if (summary.textContent !== text) summary.textContent = text;
		},
	};
}

function uptime(s) {
	if (!Number.isFinite(s)) return '—';
	const d = Math.floor(s / 86400);
	const hr = Math.floor((s % 86400) / 3600);
	const m = Math.floor((s % 3600) / 60);
	return d ? `${d} d ${hr} h` : hr ? `${hr} h ${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
}

// A request's path without its query (which may hold a search term).
const pathOf = (uri) => String(uri || '').split('?')[0];

function poolSection() {
	const ITEMS = [
		['workers', 'Workers'], ['busy', 'Busy / idle'], ['pm', 'Process manager'], ['accepted', 'Accepted requests'],
		['queue', 'Listen queue'], ['maxActive', 'Most busy at once'], ['reached', 'Max children reached'],
		['slow', 'Slow requests'], ['timeouts', 'Request timeouts'], ['restarts', 'Worker restarts'], ['started', 'Master started'],
	];
	const dd = Object.fromEntries(ITEMS.map(([k]) => [k, h('dd', { id: `pool-${k}` }, '—')]));
	const nProcs = h('span', null, '');
	// the workers' table, kept while the page lives (its rows change) and in
	// the page only while "Each worker" is open: closed, nothing of it can
	// take the focus
	const rows = h('tbody');
	const wrap = h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': 'Workers' },
		h('table', null,
			h('caption', null, 'Workers (request paths without their query)'),
			h('thead', null, h('tr', null, ['Pid', 'State', 'Requests', 'Generation', 'Started', 'Request'].map((x) => h('th', { scope: 'col' }, x)))),
			rows));
	const list = h('div', { id: 'pool-processes' });
	const details = h('details', { class: 'mon-workers' }, h('summary', null, 'Each worker', nProcs), list);
	details.addEventListener('toggle', () => (details.open ? list.replaceChildren(wrap) : list.replaceChildren()));
	const section = h('section', { 'aria-labelledby': 'mon-pool-h' },
		h('h2', { id: 'mon-pool-h' }, 'Worker pool'),
		h('dl', { class: 'settings', id: 'mon-pool' }, ITEMS.flatMap(([k, label]) => [h('dt', null, label), dd[k]])),
		details);
	const put = (k, v, value) => {
		dd[k].replaceChildren(...[v].flat());
		if (value !== undefined) dd[k].dataset.value = String(value);
	};
	return {
		section,
		update(s) {
			put('workers', `${s.totalProcesses} of ${s.maxChildren}`, s.totalProcesses);
			dd.workers.dataset.max = String(s.maxChildren);
			put('busy', `${s.activeProcesses} busy, ${s.idleProcesses} idle`, s.activeProcesses);
			put('pm', s.processManager);
			put('accepted', String(s.acceptedConn), s.acceptedConn);
			put('queue', s.listenQueue == null ? 'unknown' : `${s.listenQueue} waiting (room for ${s.listenQueueLen})`);
			put('maxActive', String(s.maxActiveProcesses));
			put('reached', String(s.maxChildrenReached), s.maxChildrenReached);
			put('slow', String(s.slowRequests));
			put('timeouts', String(s.requestTimeouts));
			put('restarts', String(s.workerRestarts), s.workerRestarts);
			put('started', [time(s.startTime), `, up ${uptime(s.startSince)}`]);
			const procs = s.processes || [];
			nProcs.textContent = ` (${procs.length})`;
			const cur = (p) => (p.state === 'idle'
				? (p.lastRequestUri ? `last: ${p.lastRequestMethod} ${pathOf(p.lastRequestUri)} → ${p.lastRequestStatus}, ${num(p.lastRequestDurationMs)} ms` : '')
				: (p.requestUri ? `${p.requestMethod} ${pathOf(p.requestUri)}, ${p.requestDurationMs} ms so far` : ''));
			rows.replaceChildren(...procs.map((p) => h('tr', null,
				h('td', null, String(p.pid)), h('td', null, p.state), h('td', null, String(p.requests)),
				h('td', null, String(p.generation)), h('td', null, time(p.startTime)), h('td', null, cur(p)))));
		},
	};
}

function migrationsSection(ctx) {
	const results = h('div', { id: 'mon-migrations', class: 'reserve', 'aria-live': 'polite' }, h('p', null, 'Loading…'));
	const form = h('form', { id: 'mon-mig-filter', class: 'inline', novalidate: true },
		field({ label: 'Status', name: 'status', type: 'select', options: ['in flight', ...MIGRATION_STATUSES] }),
		h('button', { type: 'submit' }, 'Show'),
		formStatus());
	let status = 'in flight';
	const columns = [
		['Org', (m) => h('code', null, m.orgId)],
		['Status', (m) => m.status + (m.phase ? ` (${m.phase})` : '')],
		['Direction', (m) => (m.direction || '').replaceAll('_', ' ')],
		['Dry run', (m) => (m.dryRun ? 'yes' : 'no')],
		['Progress', (m) => `${num(m.percent ?? 0)} % (${m.rowsCopied ?? 0} of ${m.rowsTotal ?? '?'} rows)`
			+ (m.throttled ? `, throttled: ${m.throttleReason || ''}` : '')],
		['Started', (m) => time(m.createdAt)],
		['Last error', (m) => m.error || ''],
	];
	const show = (items, more, note) => {
		results.replaceChildren();
		if (!items.length) results.append(h('p', null, status === 'in flight' ? 'No migration in flight.' : `No migration is ${status}.`));
		else {
			results.append(h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': 'Migrations' },
				h('table', null, h('caption', null, status === 'in flight' ? 'Migrations in flight, newest first' : `Migrations ${status}, newest first`),
					h('thead', null, h('tr', null, columns.map(([head]) => h('th', { scope: 'col' }, head)))),
					h('tbody', null, items.map((m) => h('tr', { 'data-status': m.status }, columns.map(([, cell]) => h('td', null, cell(m)))))))));
		}
		if (note) results.append(h('p', { class: 'hint' }, note));
		if (more) results.append(more);
	};
	const one = async (st, cursor, acc) => {
		const r = await ctx.call('GET', '/migration', { query: { status: st, cursor, limit: 50 } });
		const items = [...acc, ...(r.items || [])];
		const more = r.nextCursor ? h('button', { type: 'button', class: 'more',
			onclick: () => one(st, r.nextCursor, items).catch((e) => showError(form, e)) }, 'Next migrations') : null;
		show(items, more);
	};
	const reload = async () => {
		if (status !== 'in flight') return one(status, null, []);
		const pages = await Promise.all(IN_FLIGHT.map((st) => ctx.call('GET', '/migration', { query: { status: st, limit: 50 } })));
		const items = pages.flatMap((p) => p.items || []).sort((x, y) => (x.createdAt < y.createdAt ? 1 : x.createdAt > y.createdAt ? -1 : 0));
		const full = IN_FLIGHT.filter((_, i) => pages[i].nextCursor);
		show(items, null, full.length ? `More than 50 are ${full.join(', ')}: choose that status to page through them.` : null);
	};
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		clearErrors(form);
		status = formValues(form).status || 'in flight';
		try {
			await reload();
		} catch (err) {
			showError(form, err);
		}
	});
	const section = h('section', { 'aria-labelledby': 'mon-mig-h' },
		h('h2', { id: 'mon-mig-h' }, 'Migrations in flight'),
		h('p', null, 'Tenant migrations not yet completed, aborted or failed (runbook 3), reloaded when a migration changes status. '
			+ 'Follow, finalize or abort one in the ', h('a', { href: '#/migration', id: 'mon-mig-link' }, 'Migration screen'), '.'),
		form, results);
	return { section, reload, failed: (err) => showError(form, err) };
}
