// The Prometheus text format (what GET /metrics answers), parsed into
// samples: parseProm(text) → [{ name, labels: {k: v}, value }]. Pure: no
// DOM, no fetch. Comment lines (# HELP, # TYPE) and blank lines are
// skipped; a timestamp after the value is ignored; label values are
// unescaped (\\, \", \n); values may be +Inf, -Inf or NaN. A line that
// does not parse is skipped rather than trusted.

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,?)/;

function unescape(s) {
	return s.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
}

function number(s) {
	if (s === '+Inf' || s === 'Inf') return Infinity;
	if (s === '-Inf') return -Infinity;
	if (s === 'NaN') return NaN;
	if (!/^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/.test(s)) return undefined;
	return Number(s);
}

function parseLine(line) {
	const m = NAME.exec(line);
	if (!m) return null;
	const name = m[0];
	let rest = line.slice(name.length);
	const labels = {};
	if (rest.startsWith('{')) {
		rest = rest.slice(1);
		for (;;) {
			const t = rest.trimStart();
			if (t.startsWith('}')) {
				rest = t.slice(1);
				break;
			}
			const l = LABEL.exec(rest);
			if (!l) return null;
			labels[l[1]] = unescape(l[2]);
			rest = rest.slice(l[0].length);
			if (!l[3] && !rest.trimStart().startsWith('}')) return null;
		}
	}
	const parts = rest.trim().split(/\s+/);
	if (!parts[0] || parts.length > 2) return null;
	const value = number(parts[0]);
	if (value === undefined) return null;
	return { name, labels, value };
}

export function parseProm(text) {
	const out = [];
	for (const raw of String(text || '').split('\n')) {
		const line = raw.trim();
		if (!line || line.startsWith('#')) continue;
		const s = parseLine(line);
		if (s) out.push(s);
	}
	return out;
}
