-- Issue 20: what a new user did wrong, and what the extension answers.
-- Each block failed on 0.2.0 (run this file against CREATE EXTENSION
-- hookseal VERSION '0.2.0' to see how) and passes on 0.3.0.
SET search_path = hookseal, public;
\set SHOW_CONTEXT never
-- Refusals that name ids or times (different each run) go through err(),
-- which runs a statement and prints its SQLSTATE and message with those masked.
CREATE FUNCTION pg_temp.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    m text;
    h text;
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, h = PG_EXCEPTION_HINT;
    RETURN regexp_replace(regexp_replace(
        SQLSTATE || ' ' || m || coalesce(' (hint: ' || nullif(h, '') || ')', ''),
        '(app|wh|secret|evt)_[A-Za-z0-9_-]{21}', '\1_*', 'g'),
        '[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d(\.\d+)? \d{4} \w+', '<time>', 'g');
END
$$;

-- Item 3: caller-given event ids are idempotent per app, not across apps.
SELECT create_app('tenant a') AS app_a \gset
SELECT create_app('tenant b') AS app_b \gset
SELECT endpoint_id AS ep_a FROM create_endpoint(:'app_a', 'http://127.0.0.1:9/a', 'native') \gset
SELECT endpoint_id AS ep_b FROM create_endpoint(:'app_b', 'http://127.0.0.1:9/b', 'native') \gset
SELECT webhook_send(:'app_a', 'payment.created', '{"v":"app a"}', 'my_id_1') AS sent_a;
SELECT webhook_send(:'app_b', 'payment.created', '{"v":"other app"}', 'my_id_1') AS sent_b;
-- Both stored, each fanned out to its own app's endpoint only.
SELECT e.app_id = :'app_a' AS app_a, e.data FROM events e WHERE e.id = 'my_id_1' ORDER BY 1;
SELECT o.endpoint_id = :'ep_a' AS to_a, o.body::jsonb -> 'data' AS data
FROM outbox o WHERE o.event_id = 'my_id_1' ORDER BY 1;
-- A repeat within an app is still a no-op.
SELECT webhook_send(:'app_b', 'payment.created', '{"v":"repeat"}', 'my_id_1') AS repeat_b;
SELECT count(*) AS events_with_my_id_1 FROM events WHERE id = 'my_id_1';
-- event_attempts names the app when two apps used the id.
SELECT pg_temp.err($$SELECT count(*) FROM hookseal.event_attempts('my_id_1')$$) AS ambiguous;
SELECT endpoint_id = :'ep_b' AS b_only, status FROM event_attempts('my_id_1', :'app_b');
-- Retention of one app never touches the other app's rows with the same id.
UPDATE apps SET retention = '1 millisecond' WHERE id = :'app_a';
UPDATE outbox SET status = 'delivered' WHERE event_id = 'my_id_1';
UPDATE events SET created_at = created_at - 60000 WHERE id = 'my_id_1';
SELECT maintain() ->> 'events' AS deleted_events;
SELECT app_id = :'app_b' AS b_kept, count(*) FROM events WHERE id = 'my_id_1' GROUP BY 1;
SELECT count(*) AS b_rows_kept FROM outbox WHERE event_id = 'my_id_1' AND app_id = :'app_b';
-- Replay of app b puts back its row under the same id.
SELECT replay(:'app_b', '-infinity') AS replayed_b;

-- Item 2: one endpoint without an active secret stops nobody.
SELECT create_app('secrets') AS app \gset
SELECT endpoint_id AS ep_gone FROM create_endpoint(:'app', 'http://127.0.0.1:9/gone', 'github') \gset
SELECT endpoint_id AS ep_fine FROM create_endpoint(:'app', 'http://127.0.0.1:9/fine', 'github') \gset
SELECT secret_id AS new_secret FROM rotate_secret(:'ep_gone', '1 second') \gset
-- Revoking the new secret would leave nothing once the old one expires: refused.
SELECT pg_temp.err(format('SELECT hookseal.revoke_secret(%L)', :'new_secret')) AS revoke_new;
-- The state a 0.2.0 user could reach anyway (every secret expired or revoked):
UPDATE secrets SET expires_at = clock_timestamp() - interval '1 second' WHERE webhook_id = :'ep_gone';
UPDATE secrets SET revoked_at = clock_timestamp() WHERE webhook_id = :'ep_gone';
SELECT endpoint_id = :'ep_gone' AS gone, active_secrets, held_reason IS NOT NULL AS flagged
FROM endpoint_status WHERE app_id = :'app' ORDER BY 1;
-- webhook_send still works; the row of the endpoint without a secret is
-- stored unsigned and held, the other one signed.
SELECT webhook_send(:'app', 'push', '{"n":1}') AS evt \gset
SELECT endpoint_id = :'ep_gone' AS gone, headers = '{}' AS unsigned, signed_at = '-infinity' AS to_sign
FROM outbox WHERE event_id = :'evt' ORDER BY 1;
-- claim() delivers the other endpoint and holds the row without a secret,
-- also once it is due for re-signing.
UPDATE outbox SET signed_at = '-infinity' WHERE event_id = :'evt';
SELECT endpoint_id = :'ep_fine' AS fine, headers ? 'X-Hub-Signature-256' AS signed
FROM claim('w-secrets', 100) WHERE endpoint_id IN (:'ep_gone', :'ep_fine');
SELECT status FROM outbox WHERE event_id = :'evt' AND endpoint_id = :'ep_gone';
-- Enabling such an endpoint asks for a secret; a new one releases the rows.
UPDATE endpoints SET enabled = false WHERE id = :'ep_gone';
SELECT pg_temp.err(format('SELECT hookseal.enable_endpoint(%L)', :'ep_gone')) AS enable_without_secret;
UPDATE endpoints SET enabled = true WHERE id = :'ep_gone';
SELECT count(*) AS new_secret FROM create_secret(:'ep_gone');
SELECT endpoint_id = :'ep_gone' AS gone, headers ? 'X-Hub-Signature-256' AS signed
FROM claim('w-secrets', 100) WHERE endpoint_id = :'ep_gone';
SELECT held_reason FROM endpoint_status WHERE endpoint_id = :'ep_gone';

-- Item 8: a NULL or negative grace is refused, nothing changes.
SELECT count(*) AS secrets_before FROM secrets WHERE webhook_id = :'ep_fine' \gset
SELECT * FROM rotate_secret(:'ep_fine', NULL);
SELECT * FROM rotate_secret(:'ep_fine', '-1 hour');
SELECT count(*) = :secrets_before AS unchanged, bool_and(expires_at IS NULL) AS none_expiring
FROM secrets WHERE webhook_id = :'ep_fine';
SELECT * FROM rotate_secret('wh_nobody');

-- Item 6: a v1a endpoint rotates key pairs; options are typed strictly.
SELECT endpoint_id AS ep_v1a, secret AS v1a_public FROM create_endpoint(:'app', 'http://127.0.0.1:9/v1a',
    'standard', options => '{"asymmetric": true}') \gset
SELECT left(secret, 5) AS rotated_to FROM rotate_secret(:'ep_v1a', '0');
SELECT pg_temp.err(format('SELECT hookseal.create_secret(%L)', :'ep_v1a')) AS hmac_on_v1a;
SELECT webhook_send(:'app', 'push', '{"n":2}') AS evt_v1a \gset
SELECT headers ->> 'webhook-signature' LIKE 'v1a,%' AS signs_v1a,
       headers ->> 'webhook-signature' NOT LIKE '%v1,%' AS no_hmac
FROM outbox WHERE event_id = :'evt_v1a' AND endpoint_id = :'ep_v1a';
SELECT count(*) AS endpoints_before FROM endpoints \gset
SELECT * FROM create_endpoint(:'app', 'http://127.0.0.1:9/x', 'standard', options => '{"asymmetric": "true"}');
SELECT * FROM create_endpoint(:'app', 'http://127.0.0.1:9/x', 'standard', options => '{"asymmetric": 1}');
SELECT alter_endpoint(:'ep_fine', '{"ordered": "yes"}');
SELECT alter_endpoint(:'ep_fine', '{"ordered": 1}');
SELECT count(*) = :endpoints_before AS no_endpoint_made FROM endpoints;
SELECT ordered FROM endpoints WHERE id = :'ep_fine';

-- Item 11: each refusal is a hookseal: message naming what is wrong.
SELECT * FROM create_endpoint('app_nonexistent', 'http://127.0.0.1:9/x');
SELECT * FROM create_endpoint(:'app', 'ftp://127.0.0.1/x');
SELECT * FROM create_endpoint(:'app', 'http://127.0.0.1:9/x y');
SELECT * FROM create_endpoint(:'app', 'http://127.0.0.1:9/x', 'no-such-scheme');
SELECT * FROM create_endpoint(:'app', 'http://127.0.0.1:9/x', 'signed-url');
SELECT * FROM create_endpoint(:'app', 'http://127.0.0.1:9/x',
    '{"name": "acme", "algorithm": "sha256", "encoding": "hex", "key": "utf8",
      "signature": {"header": "Acme-Signature"},
      "format": {"tag": "v0", "tag_separator": "=", "list_separator": ",", "timestamp_tag": "t"},
      "timestamp": {"unit": "seconds"}, "message": "{timestamp}.{body}",
      "stronger": [{"tag": "v1", "message": "{timestamp}.{headers}{body}"}],
      "signed_headers": {"tag": "h", "separator": ";"}, "mismatch_status": 401}');
SELECT * FROM create_endpoint(:'app', 'http://127.0.0.1:9/x', event_types => ARRAY['a', '']);
SELECT alter_endpoint(:'ep_fine', '{"event_types": "x"}');
SELECT alter_endpoint(:'ep_fine', '{"event_types": ["a", 1]}');
SELECT alter_endpoint(:'ep_fine', '{"max_in_flight": 2.5}');
SELECT alter_endpoint(:'ep_fine', '{"max_in_flight": 1e30}');
SELECT alter_endpoint(:'ep_fine', '{"rate_limit": "fast"}');
SELECT alter_endpoint(:'ep_fine', '{"probe_interval": "soon"}');
SELECT alter_endpoint(:'ep_fine', '{"url": 5}');
SELECT webhook_send('app_nonexistent', 'x', '{}');
SELECT webhook_send('app_nonexistent', 'x', '{}', 'id_1');
-- Nothing changed.
SELECT count(*) = :endpoints_before AS no_endpoint_made FROM endpoints;
SELECT event_types, max_in_flight, rate_limit FROM endpoints WHERE id = :'ep_fine';
-- Upper-case schemes are URLs too, stored in lower case.
SELECT endpoint_id AS ep_upper FROM create_endpoint(:'app', 'HTTPS://example.com/Path') \gset
SELECT url FROM endpoints WHERE id = :'ep_upper';
SELECT alter_endpoint(:'ep_fine', '{"url": "HTTP://127.0.0.1:9/Fine", "max_in_flight": 2.0}');
SELECT url, max_in_flight FROM endpoints WHERE id = :'ep_fine';
-- scheme_exists() agrees with what endpoints accept.
SELECT s, scheme_exists(s) FROM unnest(ARRAY['github', 'standard', 'signed-url', 'nope']) s;

-- Item 10: failures count in the order attempts finished. Five failures and
-- two deliveries of one endpoint, recorded fails first (as a recorder that
-- batches acks does): never more than two failures in a row by finish time.
SELECT endpoint_id AS ep_c FROM create_endpoint(:'app', 'http://127.0.0.1:9/c', 'native',
    event_types => ARRAY['circuit']) \gset
SELECT count(webhook_send(:'app', 'circuit', jsonb_build_object('n', g))) AS sent FROM generate_series(1, 7) g;
CREATE TEMP TABLE cc AS
SELECT c.outbox_id, row_number() OVER (ORDER BY c.outbox_id) AS n
FROM claim('w-c', 100, '1 hour', 32) c WHERE c.endpoint_id = :'ep_c';
SELECT count(*) AS claimed FROM cc;
-- Finish times: row n finished at 12:00:0n. Rows 3 and 6 were delivered.
SELECT count(fail(cc.outbox_id, 'w-c', 500, 'boom', NULL, 'http', NULL,
                  timestamptz '2026-01-01 12:00:00+00' + (cc.n - 1) * interval '1 second',
                  timestamptz '2026-01-01 12:00:00+00' + cc.n * interval '1 second', false, NULL, NULL))
       AS failed
FROM cc WHERE cc.n NOT IN (3, 6);
SELECT count(*) AS acked FROM ack_many('w-c',
    ARRAY(SELECT outbox_id FROM cc WHERE n IN (3, 6) ORDER BY n), ARRAY[200, 200], ARRAY[1, 1],
    ARRAY[timestamptz '2026-01-01 12:00:02+00', '2026-01-01 12:00:05+00'],
    ARRAY[timestamptz '2026-01-01 12:00:03+00', '2026-01-01 12:00:06+00'],
    ARRAY[false, false], ARRAY[NULL, NULL]::text[], ARRAY[NULL, NULL]::text[]);
-- One failure (row 7) after the last delivery: the circuit is closed and
-- the endpoint enabled.
SELECT s.circuit, s.consecutive_failures, e.enabled
FROM endpoint_state s JOIN endpoints e ON e.id = s.endpoint_id WHERE s.endpoint_id = :'ep_c';
-- A failure that finished before the last delivery is not counted.
SELECT webhook_send(:'app', 'circuit', '{"n": 8}') AS evt8 \gset
SELECT fail(c.outbox_id, 'w-c', 500, 'late', NULL, 'http', NULL, '2026-01-01 12:00:04+00',
            '2026-01-01 12:00:04.5+00', false, NULL, NULL)
FROM claim('w-c', 100, '1 hour', 32) c WHERE c.event_id = :'evt8' AND c.endpoint_id = :'ep_c';
SELECT circuit, consecutive_failures FROM endpoint_state WHERE endpoint_id = :'ep_c';
-- The other order: the deliveries recorded first, while the endpoint had
-- no counted failures (only last_success_at moves), then the failures: two
-- before the first delivery (not counted), one after the last (row 6,
-- counted), then one before the last (row 4, not counted).
SELECT endpoint_id AS ep_d FROM create_endpoint(:'app', 'http://127.0.0.1:9/d', 'native',
    event_types => ARRAY['circuit-d']) \gset
SELECT count(webhook_send(:'app', 'circuit-d', jsonb_build_object('n', g))) AS sent FROM generate_series(1, 6) g;
CREATE TEMP TABLE cd AS
SELECT c.outbox_id, row_number() OVER (ORDER BY c.outbox_id) AS n
FROM claim('w-d', 100, '1 hour', 32) c WHERE c.endpoint_id = :'ep_d';
SELECT count(*) AS acked FROM ack_many('w-d',
    ARRAY(SELECT outbox_id FROM cd WHERE n IN (3, 5) ORDER BY n), ARRAY[200, 200], ARRAY[1, 1],
    ARRAY[timestamptz '2026-01-01 12:00:02+00', '2026-01-01 12:00:04+00'],
    ARRAY[timestamptz '2026-01-01 12:00:03+00', '2026-01-01 12:00:05+00'],
    ARRAY[false, false], ARRAY[NULL, NULL]::text[], ARRAY[NULL, NULL]::text[]);
SELECT consecutive_failures, last_success_at
FROM endpoint_state WHERE endpoint_id = :'ep_d';
CREATE FUNCTION pg_temp.fail_d(n integer) RETURNS text LANGUAGE sql AS $$
    SELECT fail(cd.outbox_id, 'w-d', 500, 'boom', NULL, 'http', NULL,
                timestamptz '2026-01-01 12:00:00+00' + (cd.n - 1) * interval '1 second',
                timestamptz '2026-01-01 12:00:00+00' + cd.n * interval '1 second', false, NULL, NULL)::text
    FROM cd WHERE cd.n = $1
$$;
SELECT pg_temp.fail_d(1) AS f1, pg_temp.fail_d(2) AS f2;
SELECT consecutive_failures AS after_1_2 FROM endpoint_state WHERE endpoint_id = :'ep_d';
SELECT pg_temp.fail_d(6) AS f6;
SELECT consecutive_failures AS after_6 FROM endpoint_state WHERE endpoint_id = :'ep_d';
SELECT pg_temp.fail_d(4) AS f4;
SELECT consecutive_failures AS after_4, circuit FROM endpoint_state WHERE endpoint_id = :'ep_d';

-- Item 12: a body larger than receivers accept is refused before anything is written.
SELECT count(*) AS events_before FROM events \gset
SELECT pg_temp.err(format($$SELECT hookseal.webhook_send(%L, 'big', jsonb_build_object('blob', repeat('x', 300000)))$$, :'app')) AS too_big;
SET hookseal.max_body_bytes = '1MB';
SELECT webhook_send(:'app', 'big', jsonb_build_object('blob', repeat('x', 300000))) IS NOT NULL AS raised_limit;
RESET hookseal.max_body_bytes;
SELECT count(*) - :events_before AS stored FROM events;
-- webhook_verify takes bodies up to the same limit (0.2.0 refused more than
-- 262,144 bytes with no way to raise it).
SELECT webhook_sign('github', 'It''s a Secret to Everybody', repeat('x', 300000)) AS big_headers \gset
SELECT webhook_verify_reason('github', ARRAY['It''s a Secret to Everybody'], repeat('x', 300000),
    :'big_headers') AS big_by_default;
SET hookseal.max_body_bytes = '1MB';
SELECT webhook_verify_reason('github', ARRAY['It''s a Secret to Everybody'], repeat('x', 300000),
    :'big_headers') AS big_raised;
RESET hookseal.max_body_bytes;
-- webhook_verify_reason takes a bytea body as webhook_verify does.
SELECT webhook_verify_reason('github', ARRAY['It''s a Secret to Everybody'], convert_to('Hello, World!', 'UTF8'),
    '{"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}') AS bytea_reason;

-- Item 14: small ones.
SELECT webhook_sign('github', 's3cret-s3cret', 'x', NULL, 'infinity');
SELECT webhook_verify_reason('stripe', ARRAY['whsec_x'], 'x', '{"Stripe-Signature": 5}') AS number_header;
SELECT webhook_verify_reason('github', ARRAY['s'], 'x', '{"X-Hub-Signature-256": ["sha256=00", 7]}') AS array_header;
SELECT webhook_verify_reason('github', ARRAY['It''s a Secret to Everybody'], 'Hello, World!',
    '{"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}', -5) AS negative_tolerance;
SELECT pg_temp.err(format($$SELECT hookseal.replay(%L, now() + interval '1 day')$$, :'app')) AS future;
SELECT pg_temp.err(format($$SELECT hookseal.replay(%L, now(), now() - interval '1 day')$$, :'app')) AS inverted;
SELECT * FROM claim(NULL, 10);
SELECT * FROM claim('w', 10, '0 s');
