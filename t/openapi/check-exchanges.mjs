// node t/openapi/check-exchanges.mjs openapi.json DIR: checks every exchange
// the integration tests recorded (DIR/*.exchanges, JSON lines written by
// t/lib/OpsdTest.pm's http() under OPSD_TEST_EXCHANGES) against the API
// document, with ajv (JSON Schema 2020-12, the dialect of OpenAPI 3.1):
//
// - a request to a path and method of the document: its status is one the
//   operation declares; a 2xx answer's request body conforms to the
//   operation's requestBody (a refused request is checked for its answer
//   only: tests send malformed bodies on purpose); the answer's media type
//   is declared for that status and a JSON body conforms to its schema (the
//   error envelope for refusals); a status without content has no body;
// - a request outside the document (an unknown path, a method the path does
//   not take): the answer is an error in the error envelope;
// - test-only routes (/__test/...) are not in the document and are skipped,
//   as are the console's static files (/console, served by nginx, not the
//   API) and requests that got no HTTP answer (status 599).
//
// Prints one JSON object: {files, exchanges, checked, skipped, operations,
// exercised, unexercised: ["METHOD /path"],
// failures: [{test, method, path, status, problem}]}; exits 0 when there is
// no failure, 1 otherwise, 2 on a usage error.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const [docFile, dir] = process.argv.slice(2);
if (!docFile || !dir) {
	console.error("usage: node check-exchanges.mjs openapi.json EXCHANGES_DIR");
	process.exit(2);
}

// The document's schemas under one id, so that its references resolve.
const BASE = "urn:opsd:openapi";
const doc = JSON.parse(
	readFileSync(docFile, "utf8").replaceAll('"#/components/schemas/', `"${BASE}#/$defs/`),
);
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema({ $id: BASE, $defs: doc.components?.schemas ?? {} });
const compiled = new Map();
function validator(schema) {
	if (!compiled.has(schema)) compiled.set(schema, ajv.compile(schema));
	return compiled.get(schema);
}
function problems(validate) {
	return (validate.errors ?? [])
		.slice(0, 5)
		.map((e) => `${e.instancePath || "/"} ${e.message}${e.params?.additionalProperty ? `: ${e.params.additionalProperty}` : ""}`)
		.join("; ");
}
function resolve(obj) {
	// "#/components/responses/Error400" and the like
	if (obj && typeof obj.$ref === "string" && obj.$ref.startsWith("#/")) {
		return obj.$ref
			.slice(2)
			.split("/")
			.reduce((o, k) => o?.[k.replaceAll("~1", "/").replaceAll("~0", "~")], doc);
	}
	return obj;
}

// The routes as opsd's router matches them: among the patterns with the
// method, the one with a literal at the leftmost position where they differ.
const routes = Object.entries(doc.paths).map(([template, item]) => {
	const segs = template.split("/").slice(1);
	return { template, item, segs };
});
function fit(segs, path) {
	if (segs.length !== path.length) return -1;
	let score = 0;
	for (let i = 0; i < segs.length; i++) {
		if (segs[i].startsWith("{")) continue;
		if (segs[i] !== path[i]) return -1;
		score += 2 ** (31 - i);
	}
	return score;
}
function lookup(method, rawPath) {
	const path = rawPath.split("/").slice(1);
	const m = method === "HEAD" ? "get" : method.toLowerCase();
	let best = null;
	let bestScore = -1;
	let known = false;
	if (!rawPath.startsWith("/") || path.some((s) => s === "")) return { known: false };
	for (const r of routes) {
		const score = fit(r.segs, path);
		if (score < 0) continue;
		known = true;
		if (r.item[m] && score > bestScore) {
			best = r;
			bestScore = score;
		}
	}
	return { known, route: best, op: best?.item[m] };
}

function mediaType(ct) {
	return (ct ?? "").split(";")[0].trim().toLowerCase();
}
function jsonBody(text) {
	try {
		return { ok: true, value: JSON.parse(text) };
	} catch (e) {
		return { ok: false, why: e.message };
	}
}

const envelope = validator({ $ref: `${BASE}#/$defs/ErrorEnvelope` });
const failures = [];
const used = new Set();
let exchanges = 0;
let checked = 0;
let skipped = 0;
const files = readdirSync(dir).filter((f) => f.endsWith(".exchanges")).sort();

function check(x) {
	const fail = (problem) => failures.push({ test: x.test, method: x.method, path: x.path, status: x.status, problem });
	const path = x.path.split("?")[0];
	if (x.status === 599 || x.status === 0 || path.startsWith("/__test/") || /^\/console(\/|$)/.test(path)) {
		skipped++;
		return;
	}
	checked++;
	const { known, route, op } = lookup(x.method, path);
	const json = mediaType(x.responseContentType) === "application/json";
	if (!op) {
		if (x.status < 400) {
			fail(`answered ${x.status}, but ${known ? "this method of the path" : "the path"} is not in the document`);
		} else if (x.method !== "HEAD" && !x.responseBodyOmitted) {
			const body = json ? jsonBody(x.responseBody ?? "") : { ok: false, why: `Content-Type ${x.responseContentType ?? "none"}` };
			if (!body.ok) fail(`an error outside the document not in the envelope: ${body.why}`);
			else if (!envelope(body.value)) fail(`an error outside the document not in the envelope: ${problems(envelope)}`);
		}
		return;
	}
	used.add(`${x.method === "HEAD" ? "GET" : x.method} ${route.template}`);
	const response = resolve(op.responses?.[String(x.status)]);
	if (!response) {
		fail(`status ${x.status} is not declared (declared: ${Object.keys(op.responses ?? {}).join(", ")})`);
		return;
	}
	// The request, when opsd accepted it.
	// (an optional body, required: false, may be absent altogether)
	const absent = x.requestBody === undefined || x.requestBody === "";
	if (x.status >= 200 && x.status < 300 && op.requestBody && !(absent && op.requestBody.required === false)) {
		const schema = op.requestBody.content?.["application/json"]?.schema;
		const body = x.requestBody !== undefined ? jsonBody(x.requestBody) : { ok: false, why: "no body" };
		if (!body.ok) fail(`request accepted with a body that is not JSON: ${body.why}`);
		else if (schema && !validator(schema)(body.value)) fail(`request body: ${problems(validator(schema))}`);
	}
	// The answer.
	if (x.method === "HEAD" || x.responseBodyOmitted) return;
	const text = x.responseBody ?? (x.responseBodyBase64 ? "(binary)" : "");
	if (!response.content) {
		if (text.length) fail(`status ${x.status} declares no body, but one came (${text.length} characters)`);
		return;
	}
	const media = response.content[mediaType(x.responseContentType)];
	if (!media) {
		fail(`Content-Type ${x.responseContentType ?? "none"} is not declared for ${x.status} (declared: ${Object.keys(response.content).join(", ")})`);
		return;
	}
	if (!json || !media.schema) return;
	const body = jsonBody(text);
	if (!body.ok) {
		fail(`the answer is not JSON: ${body.why}`);
		return;
	}
	const validate = validator(media.schema);
	if (!validate(body.value)) fail(`response body: ${problems(validate)}`);
}

for (const f of files) {
	for (const line of readFileSync(join(dir, f), "utf8").split("\n")) {
		if (!line.trim()) continue;
		exchanges++;
		let x;
		try {
			x = JSON.parse(line);
		} catch (e) {
			failures.push({ test: f, method: "", path: "", status: 0, problem: `unreadable line: ${e.message}` });
			continue;
		}
		check(x);
	}
}
const all = Object.entries(doc.paths).flatMap(([path, item]) =>
	Object.keys(item)
		.filter((k) => k !== "parameters")
		.map((m) => `${m.toUpperCase()} ${path}`),
);
const operations = all.length;
const unexercised = all.filter((op) => !used.has(op));
console.log(
	JSON.stringify({ files: files.length, exchanges, checked, skipped, operations, exercised: operations - unexercised.length, unexercised, failures }),
);
process.exit(failures.length ? 1 : 0);
