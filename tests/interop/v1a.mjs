// v1a (ed25519) interop: the hookseal CLI against Node's crypto, both ways.
// Usage: node v1a.mjs PATH_TO_HOOKSEAL
import crypto from "node:crypto";
import { spawnSync } from "node:child_process";

const BIN = process.argv[2];
let passed = 0, failed = 0;
const check = (name, cond, detail = "") => {
  if (cond) passed++; else { failed++; console.error(`FAIL ${name} ${detail}`); }
};
const cli = (args, body, env) => {
  const p = spawnSync(BIN, args, { input: body, env: { ...process.env, ...env } });
  return { code: p.status, out: p.stdout.toString(), err: p.stderr.toString() };
};
const b64 = (buf) => Buffer.from(buf).toString("base64");
const fromUrl = (s) => Buffer.from(s, "base64url");

// Node makes the pair and signs; the CLI verifies.
for (let n = 0; n < 20; n++) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  const seed = fromUrl(jwk.d), pub = fromUrl(jwk.x);
  const sk = "whsk_" + b64(Buffer.concat([seed, pub])), pk = "whpk_" + b64(pub);
  const body = Buffer.from(JSON.stringify({ type: "node.signed", n, note: "caf\u00e9" }));
  const id = `msg_node${n}`, ts = String(Math.floor(Date.now() / 1000));
  const sig = crypto.sign(null, Buffer.concat([Buffer.from(`${id}.${ts}.`), body]), privateKey);
  const h = ["-H", `webhook-id: ${id}`, "-H", `webhook-timestamp: ${ts}`, "-H", `webhook-signature: v1a,${b64(sig)}`];
  for (const [label, key] of [["public key", pk], ["signing key", sk]]) {
    const r = cli(["verify", "--scheme", "standard", "--secret-env", "K", ...h], body, { K: key });
    check(`node-signed #${n} verifies with the ${label}`, r.code === 0, r.err);
  }
  const bad = cli(["verify", "--scheme", "standard", "--secret-env", "K", ...h], Buffer.concat([body, Buffer.from(" ")]), { K: pk });
  check(`node-signed #${n}, changed body refused`, bad.code === 1, bad.err);
}

// The CLI makes the pair and signs; Node verifies.
for (let n = 0; n < 20; n++) {
  const [sk, pk] = cli(["keygen", "--scheme", "standard-v1a"], "", {}).out.split("\n");
  const publicKey = crypto.createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(pk.slice(5), "base64").toString("base64url") },
    format: "jwk",
  });
  const body = Buffer.from(JSON.stringify({ type: "cli.signed", n }));
  const r = cli(["sign", "--scheme", "standard", "--secret-env", "SK"], body, { SK: sk });
  const h = Object.fromEntries(r.out.trim().split("\n").map((l) => l.split(": ")));
  const signed = Buffer.concat([Buffer.from(`${h["webhook-id"]}.${h["webhook-timestamp"]}.`), body]);
  const sig = Buffer.from(h["webhook-signature"].replace(/^v1a,/, ""), "base64");
  check(`cli-signed #${n}: node verifies`, crypto.verify(null, signed, publicKey, sig), r.out);
  check(`cli-signed #${n}: node refuses another body`,
    !crypto.verify(null, Buffer.concat([signed, Buffer.from("x")]), publicKey, sig));
}

// The extension and the dispatcher, when a database is at hand
// (HOOKSEAL_PSQL: a psql command line; HOOKSEAL_DISPATCH_URL: a dispatcher
// role's URL): SQL signs, Node verifies; Node signs, SQL verifies; an
// endpoint with a stored v1a key delivers through `hookseal dispatch` to a
// Node receiver that verifies with the public key it was handed.
const psql = process.env.HOOKSEAL_PSQL;
if (psql) {
  const [cmd, ...base] = psql.split(" ");
  const sql = (q) => {
    const p = spawnSync(cmd, [...base, "-qAtX", "-c", q]);
    if (p.status !== 0) throw new Error(p.stderr.toString());
    return p.stdout.toString().trim();
  };
  const { privateKey } = crypto.generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  const sk = "whsk_" + b64(Buffer.concat([fromUrl(jwk.d), fromUrl(jwk.x)])), pk = "whpk_" + b64(fromUrl(jwk.x));
  const publicKey = crypto.createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: jwk.x }, format: "jwk" });
  const verifies = (h, body) => {
    const signed = Buffer.concat([Buffer.from(`${h["webhook-id"]}.${h["webhook-timestamp"]}.`), Buffer.from(body)]);
    return h["webhook-signature"].split(" ").filter((i) => i.startsWith("v1a,"))
      .some((i) => crypto.verify(null, signed, publicKey, Buffer.from(i.slice(4), "base64")));
  };
  const body = '{"type":"sql.node","amount":2.5}';
  const h = JSON.parse(sql(`SELECT hookseal.webhook_sign('standard', '${sk}', '${body}', 'msg_node_sql', now())`));
  check("SQL webhook_sign with whsk_: node verifies", verifies(h, body), JSON.stringify(h));
  const ts = String(Math.floor(Date.now() / 1000));
  const sig = b64(crypto.sign(null, Buffer.from(`msg_node_sql2.${ts}.${body}`), privateKey));
  const hdrs = JSON.stringify({ "webhook-id": "msg_node_sql2", "webhook-timestamp": ts, "webhook-signature": `v1a,${sig}` });
  check("node-signed: SQL webhook_verify with whpk_",
    sql(`SELECT hookseal.webhook_verify('standard', ARRAY['${pk}'], '${body}', '${hdrs}')`) === "t");

  const dispatchUrl = process.env.HOOKSEAL_DISPATCH_URL;
  if (dispatchUrl) {
    const http = await import("node:http");
    const results = { ok: 0, bad: 0 };
    let endpointKey = null;
    const server = http.createServer((req, res) => {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        const pub = crypto.createPublicKey({
          key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(endpointKey.slice(5), "base64").toString("base64url") },
          format: "jwk",
        });
        const signed = Buffer.concat([Buffer.from(`${req.headers["webhook-id"]}.${req.headers["webhook-timestamp"]}.`), body]);
        const ok = (req.headers["webhook-signature"] || "").split(" ").filter((i) => i.startsWith("v1a,"))
          .some((i) => crypto.verify(null, signed, pub, Buffer.from(i.slice(4), "base64")));
        results[ok ? "ok" : "bad"]++;
        res.writeHead(ok ? 200 : 400).end();
      });
    });
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    const port = server.address().port;
    const app = sql("SELECT hookseal.create_app('v1a-node')");
    const out = sql(`SELECT endpoint_id || ' ' || secret FROM hookseal.create_endpoint('${app}', ` +
      `'http://127.0.0.1:${port}/hook', 'standard', NULL, 'default', '{"asymmetric": true}')`);
    endpointKey = out.split(" ")[1];
    const n = 30;
    sql(`SELECT count(hookseal.webhook_send('${app}', 'order.created', jsonb_build_object('n', g))) FROM generate_series(1, ${n}) g`);
    const { spawn } = await import("node:child_process");
    const worker = spawn(BIN, ["dispatch", "--database-url", dispatchUrl, "--allow", "127.0.0.0/8"], { stdio: "ignore" });
    const deadline = Date.now() + 60000;
    while (results.ok + results.bad < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    worker.kill("SIGTERM");
    server.close();
    check(`dispatcher delivered ${n} v1a-signed events, node verified each`, results.ok === n && results.bad === 0,
      JSON.stringify(results));
  }
}

console.log(`v1a interop (node): ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
