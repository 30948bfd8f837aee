// The official TypeScript SDK client (what Cursor, VS Code and Claude Desktop build on)
// lists Rapport's tools and calls some. It must print no warning: schemas with formats it
// does not know ("uint64") or other oddities make it warn on every tools/list.
//
//   node ts_client.mjs URL KEY
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, key] = process.argv.slice(2);
const printed = [];
for (const level of ["warn", "error", "log", "info", "debug"]) {
  const original = console[level];
  console[level] = (...args) => {
    printed.push(`${level}: ${args.map(String).join(" ")}`);
    original.apply(console, args);
  };
}

const fail = (msg) => {
  process.stderr.write(`FAIL: ${msg}\n`);
  process.exit(1);
};

// Both profiles (SPEC 5): the lean one by default, the full one with ?profile=full.
const connect = async (u, k = key) => {
  const c = new Client({ name: "rapport-ts-check", version: "1.0.0" });
  await c.connect(new StreamableHTTPClientTransport(new URL(u), { requestInit: { headers: { "x-api-key": k } } }));
  return c;
};
const client = await connect(`${url}?profile=full`);
const { tools } = await client.listTools();
if (tools.length < 30 || !tools.some((t) => t.name === "create_contacts")) fail(`expected the full catalog, got ${tools.length} tools`);
const lean = await connect(url);
const leanTools = (await lean.listTools()).tools;
if (leanTools.length > 20 || !leanTools.some((t) => t.name === "write_records")) fail(`expected the lean catalog, got ${leanTools.length} tools`);
for (const t of [...tools, ...leanTools]) {
  if (!t.outputSchema) fail(`${t.name} has no outputSchema`);
}
const leanCall = async (name, args) => {
  const r = await lean.callTool({ name, arguments: args });
  if (r.isError) fail(`lean ${name} failed: ${JSON.stringify(r.content)}`);
  return r.structuredContent;
};
const written = await leanCall("write_records", { entity: "contact", mode: "create", items: [{ first_name: "Lea", email: "lea@example.com" }] });
if (written.items[0].email !== "lea@example.com") fail(`write_records answers the record: ${JSON.stringify(written)}`);
const found = await leanCall("search_records", { entity: "contact", query: "lea" });
if (found.items[0].first_name !== "Lea" || "email" in found.items[0]) fail(`a lean search is compact: ${JSON.stringify(found)}`);
if (!(await leanCall("describe_entity", { entity: "contact" })).operators) fail("a lean description names operators per type");
// Resources, prompts and completion, as clients that show them read them.
const { resources } = await lean.listResources();
if (!resources.some((r) => r.uri === "rapport://schema/contact")) fail(`resources/list: ${JSON.stringify(resources)}`);
const leaRecord = JSON.parse((await lean.readResource({ uri: `rapport://contact/${written.items[0].id}` })).contents[0].text);
if (leaRecord.email !== "lea@example.com") fail(`resources/read: ${JSON.stringify(leaRecord)}`);
const { prompts } = await lean.listPrompts();
if (prompts.length < 4) fail(`prompts/list: ${JSON.stringify(prompts)}`);
const review = await lean.getPrompt({ name: "pipeline_review", arguments: { pipeline: "sales" } });
if (!review.messages[0].content.text.includes("count_records")) fail(`prompts/get: ${JSON.stringify(review)}`);
const done = await lean.complete({ ref: { type: "ref/prompt", name: "pipeline_review" }, argument: { name: "pipeline", value: "sa" } });
if (!done.completion.values.includes("sales")) fail(`completion/complete: ${JSON.stringify(done)}`);
await lean.close();

// Calls whose results the SDK validates against each tool's outputSchema.
const call = async (name, args) => {
  const r = await client.callTool({ name, arguments: args });
  if (r.isError) fail(`${name} failed: ${JSON.stringify(r.content)}`);
  return r.structuredContent;
};
await call("get_workspace", {});
const company = (await call("upsert_companies", { companies: [{ name: "Acme", domain: "acme.com" }] })).items[0].record;
const contact = (await call("create_contacts", { contacts: [{ first_name: "Ada", email: "ada@example.com", company_id: company.id }] })).items[0];
const deal = (await call("create_deals", { deals: [{ name: "Acme renewal", value: "1200.00", currency: "EUR", contact_ids: [contact.id] }] })).items[0];
await call("update_deals", { deals: [{ id: deal.id, stage: "won" }] });
await call("count_records", { entity: "deal", group_by: "stage" });
await call("search_records", { entity: "contact", filters: [{ field: "email", op: "eq", value: "ada@example.com" }] });
await call("get_records", { records: [{ entity: "deal", id: deal.id }] });
await call("get_timeline", { entity: "deal", id: deal.id });
await call("describe_entity", { entity: "deal" });

// A refused call is a tool result the model reads, not an exception.
const bad = await client.callTool({ name: "create_deals", arguments: { deals: [{ name: "X", stage: "nope" }] } });
if (!bad.isError) fail("a bad stage should be refused");

// Oversight (SPEC 12): a preview and a held call are results the SDK accepts against the
// tools' output schemas, and the agent reads where its held call stands.
const preview = await call("create_contacts", { contacts: [{ first_name: "Dry" }], dry_run: true });
if (preview.dry_run !== true || preview.changes.length !== 1) fail(`a dry run answers its preview: ${JSON.stringify(preview)}`);
const base = url.replace(/\/api\/v1\/mcp$/, "");
const made = await fetch(`${base}/api/v1/keys`, {
  method: "POST",
  headers: { "x-api-key": key, "content-type": "application/json" },
  body: JSON.stringify({ name: "ts held", role: "admin", approval: { kinds: ["delete"] } }),
});
if (made.status !== 201) fail(`a key with a policy: ${made.status} ${await made.text()}`);
const heldKey = (await made.json()).key;
const careful = new Client({ name: "rapport-ts-check", version: "1.0.0" });
await careful.connect(new StreamableHTTPClientTransport(new URL(`${url}?profile=full`), { requestInit: { headers: { "x-api-key": heldKey } } }));
const ask = async (name, args) => {
  const r = await careful.callTool({ name, arguments: args });
  if (r.isError) fail(`${name} failed: ${JSON.stringify(r.content)}`);
  return r.structuredContent;
};
const held = await ask("delete_records", { entity: "deal", ids: [deal.id] });
if (held.status !== "pending_approval" || !held.approval_id) fail(`a delete waits: ${JSON.stringify(held)}`);
if ((await ask("get_approval", { approval_id: held.approval_id })).status !== "pending") fail("get_approval says pending");
if ((await call("get_records", { records: [{ entity: "deal", id: deal.id }] })).items.length !== 1) fail("a held delete deletes nothing");
await careful.close();

await client.close();
if (printed.length > 0) fail(`the SDK printed ${printed.length} lines:\n${printed.join("\n")}`);
console.info = () => {};
process.stdout.write(`ok: ${leanTools.length} lean and ${tools.length} full tools listed, 23 calls checked, no warnings\n`);
