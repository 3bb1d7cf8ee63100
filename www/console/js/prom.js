// The Prometheus text format (version 0.0.4, what GET /metrics answers),
// parsed without side effects: parseProm(text) → [{ name, labels, value }],
// one entry per sample line in the order of the text. Comments (# HELP,
// # TYPE), blank lines and lines that do not parse are left out; a
// timestamp after the value is read and dropped. Label values are
// unescaped (\\, \" and \n); values are numbers, NaN, +Inf and -Inf
// included. No DOM, no fetch: node can import it as well as the browser.

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;

export function parseProm(text) {
	const out = [];
	for (const raw of String(text ?? '').split('\n')) {
		const line = raw.trim();
		if (!line || line.startsWith('#')) continue;
		const sample = parseLine(line);
		if (sample) out.push(sample);
	}
	return out;
}

function parseValue(tok) {
	if (tok === undefined || tok === '') return null;
	switch (tok) {
	case 'NaN': return NaN;
	case '+Inf': case 'Inf': return Infinity;
	case '-Inf': return -Infinity;
	default: {
		if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(tok)) return null;
		return Number(tok);
	}
	}
}

// One sample line, or null when it is not one.
function parseLine(line) {
	const m = NAME.exec(line);
	if (!m) return null;
	const name = m[0];
	let i = name.length;
	const labels = {};
	if (line[i] === '{') {
		i++;
		for (;;) {
			while (line[i] === ' ' || line[i] === '\t') i++;
			if (line[i] === '}') { i++; break; }
			const l = LABEL.exec(line.slice(i));
			if (!l) return null;
			i += l[0].length;
			while (line[i] === ' ' || line[i] === '\t') i++;
			if (line[i++] !== '=') return null;
			while (line[i] === ' ' || line[i] === '\t') i++;
			if (line[i++] !== '"') return null;
			let v = '';
			for (;;) {
				const c = line[i++];
				if (c === undefined) return null;
				if (c === '"') break;
				if (c === '\\') {
					const e = line[i++];
					if (e === 'n') v += '\n';
					else if (e === '\\' || e === '"') v += e;
					else return null;
				} else v += c;
			}
			if (Object.prototype.hasOwnProperty.call(labels, l[0])) return null;
			// defineProperty: a label called __proto__ stays a plain key
			Object.defineProperty(labels, l[0], { value: v, enumerable: true, writable: true, configurable: true });
			while (line[i] === ' ' || line[i] === '\t') i++;
			if (line[i] === ',') { i++; continue; }
			if (line[i] === '}') { i++; break; }
			return null;
		}
	}
	const rest = line.slice(i);
	if (rest && rest[0] !== ' ' && rest[0] !== '\t') return null;
	const toks = rest.trim().split(/[ \t]+/);
	if (toks.length > 2) return null;
	const value = parseValue(toks[0]);
	if (value === null) return null;
	if (toks.length === 2 && !/^-?\d+$/.test(toks[1])) return null;
	return { name, labels, value };
}
