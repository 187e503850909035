// The Fincra reference receiver as a real Express process, after Fincra's
// Node snippet and its note ("a payload refers to an object that comprises
// the event and data fields"): HMAC-SHA512 hex of JSON.stringify({event,
// data}) with the merchant's webhook secret, compared with the `signature`
// header; "discard" answers 401. GET /stats answers {accepted, refused}.
//   WEBHOOK_SECRET=... PORT=... node fincra.js
const crypto = require('crypto');
const express = require('express');

const app = express();
const stats = { accepted: 0, refused: 0 };
app.use(express.json({ limit: '1mb' }));
app.get('/stats', (req, res) => res.json(stats));
app.post('/webhook', (req, res) => {
  const payload = { event: req.body.event, data: req.body.data };
  const encryptedData = crypto
    .createHmac('SHA512', process.env.WEBHOOK_SECRET)
    .update(JSON.stringify(payload))
    .digest('hex');
  const signatureFromWebhook = req.headers['signature'];
  if (encryptedData === signatureFromWebhook) {
    stats.accepted++;
    return res.status(200).json({ ok: true });
  }
  stats.refused++;
  return res.status(401).json({ error: 'discard' });
});
app.listen(Number(process.env.PORT), '127.0.0.1');
