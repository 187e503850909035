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

console.log(`v1a interop (node): ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
