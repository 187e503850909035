-- Benchmark fixtures: the extension, pgcrypto, 1M bodies, an app with 1 and
-- one with 10 endpoints, and same-shape unsigned tables for the baseline.
CREATE EXTENSION hookseal;
CREATE EXTENSION pgcrypto;
CREATE TABLE bodies AS
    SELECT g AS n, 'msg_' || g AS id,
           '{"type":"payment.created","data":{"id":"seti_' || g || '","amount":' || (g % 10000) ||
           ',"currency":"usd","status":"requires_confirmation","livemode":false}}' AS body
    FROM generate_series(1, :rows) g;
ANALYZE bodies;

SELECT hookseal.create_app('one') AS app1 \gset
SELECT hookseal.create_app('ten') AS app10 \gset
SELECT count(*) FROM hookseal.create_endpoint(:'app1', 'http://127.0.0.1:9/one');
SELECT count(*) FROM generate_series(1, 10) g, hookseal.create_endpoint(:'app10', 'http://127.0.0.1:9/ten' || g);

-- The unsigned baseline: what an application writes by hand.
CREATE SCHEMA plain;
CREATE TABLE plain.events (LIKE hookseal.events INCLUDING ALL);
CREATE TABLE plain.outbox (LIKE hookseal.outbox INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS INCLUDING IDENTITY);
ALTER TABLE plain.outbox ADD FOREIGN KEY (event_id) REFERENCES plain.events (id);
ALTER TABLE plain.outbox ADD FOREIGN KEY (endpoint_id) REFERENCES hookseal.endpoints (id);
CREATE TABLE apps_for_bench (name text PRIMARY KEY, id text);
INSERT INTO apps_for_bench VALUES ('one', :'app1'), ('ten', :'app10');
