// The Hedera (`x-signature`) reference receiver as a real Express process,
// after the design document's example handler: POST only (405 otherwise),
// HMAC-SHA256 hex of JSON.stringify(req.body) with API_SECRET_KEY, 400 on a
// mismatch. GET /stats answers {accepted, refused}.
//   API_SECRET_KEY=... PORT=... node hedera.js
const crypto = require('crypto');
const express = require('express');

const app = express();
const stats = { accepted: 0, refused: 0 };
app.use(express.json({ limit: '1mb' }));
app.get('/stats', (req, res) => res.json(stats));
app.all('/api/webhook', (req, res) => {
  if (req.method !== 'POST') return res.status(405).end();
  const signature = req.headers['x-signature'];
  const hash = crypto
    .createHmac('sha256', process.env.API_SECRET_KEY)
    .update(JSON.stringify(req.body))
    .digest('hex');
  if (signature !== hash) {
    stats.refused++;
    return res.status(400).json({ error: 'signature does not match' });
  }
  stats.accepted++;
  return res.status(200).json({ ok: true });
});
app.listen(Number(process.env.PORT), '127.0.0.1');
