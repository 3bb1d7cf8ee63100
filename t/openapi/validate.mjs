// node t/openapi/validate.mjs FILE: checks that FILE is a valid OpenAPI 3.1
// document with an independent validator (@seriousme/openapi-schema-validator,
// which checks the document against the OpenAPI specification's own JSON
// schema) and that every $ref in it resolves. Prints "ok" or the errors;
// exits 0 when valid, 1 otherwise.
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";

const file = process.argv[2];
if (!file) {
	console.error("usage: node validate.mjs openapi.json");
	process.exit(2);
}
const doc = JSON.parse(readFileSync(file, "utf8"));
const validator = new Validator();
const res = await validator.validate(doc);
if (!res.valid) {
	console.log(JSON.stringify(res.errors, null, 2));
	process.exit(1);
}
if (validator.version !== "3.1") {
	console.log(`not an OpenAPI 3.1 document: version ${validator.version}`);
	process.exit(1);
}
// Every reference resolves (resolveRefs throws on one that does not).
try {
	validator.resolveRefs();
} catch (e) {
	console.log(`unresolved reference: ${e.message}`);
	process.exit(1);
}
console.log(`ok: OpenAPI ${doc.openapi}, ${Object.keys(doc.paths).length} paths`);
