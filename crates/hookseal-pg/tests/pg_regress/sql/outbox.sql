-- Events, fan-out, claim/ack/fail, dead letters.
SET search_path = hookseal, public;

SELECT create_app('shop') AS app \gset
SELECT endpoint_id AS ep_all, secret AS ep_all_secret
  FROM create_endpoint(:'app', 'http://127.0.0.1:9/all', 'native') \gset
SELECT endpoint_id AS ep_inv FROM create_endpoint(:'app', 'http://127.0.0.1:9/inv', 'standard', ARRAY['invoice.paid']) \gset
SELECT endpoint_id AS ep_off FROM create_endpoint(:'app', 'http://127.0.0.1:9/off', 'github') \gset
UPDATE endpoints SET enabled = false WHERE id = :'ep_off';

-- A rolled-back event leaves nothing behind.
BEGIN;
SELECT webhook_send(:'app', 'payment.created', '{"amount": 1}') IS NOT NULL AS sent;
SELECT count(*) AS outbox_rows_inside FROM outbox;
ROLLBACK;
SELECT count(*) AS events_after_rollback FROM events;
SELECT count(*) AS outbox_after_rollback FROM outbox;

-- A committed one: one signed row per matching enabled endpoint.
SELECT webhook_send(:'app', 'payment.created', '{"amount": 1250}') AS evt1 \gset
SELECT webhook_send(:'app', 'invoice.paid', '{"n": 1}') AS evt2 \gset
SELECT e.id = :'evt1' AS evt1, count(*) AS rows,
       bool_and(o.endpoint_id = :'ep_all') AS only_matching
FROM events e JOIN outbox o ON o.event_id = e.id
GROUP BY e.id ORDER BY e.id = :'evt1' DESC;
SELECT count(*) AS rows_for_invoice FROM outbox WHERE event_id = :'evt2';
-- The stored headers verify with the endpoint's secret.
SELECT webhook_verify('native', ARRAY[:'ep_all_secret'], body, headers) AS row_verifies,
       body::jsonb ->> 'id' = :'evt1' AS body_has_event_id,
       headers ->> 'x-webhook-id' = :'evt1' AS id_header_is_event_id
FROM outbox WHERE event_id = :'evt1';

-- Claims: one worker gets each row; the other gets none while leased.
SELECT count(*) AS w1_claimed FROM claim('w1', 10, '1 hour');
SELECT count(*) AS w2_claimed FROM claim('w2', 10, '1 hour');
-- Acks from a worker without the lease are refused.
SELECT ack(id, 'w2', 200) AS w2_ack FROM outbox WHERE event_id = :'evt1' AND endpoint_id = :'ep_all';
SELECT ack(id, 'w1', 200) AS w1_ack FROM outbox WHERE event_id = :'evt1' AND endpoint_id = :'ep_all';
SELECT status FROM outbox WHERE event_id = :'evt1' AND endpoint_id = :'ep_all';

-- The invoice event went to both the catch-all and the invoice endpoint;
-- follow the catch-all's row.
SELECT id AS row2 FROM outbox WHERE event_id = :'evt2' AND endpoint_id = :'ep_all' \gset

-- A failure schedules a retry about 5 s out (+-20%).
SELECT fail(:row2, 'w1', 500, 'Internal Server Error') AS after_500;
SELECT next_attempt_at - clock_timestamp() BETWEEN '3 seconds' AND '6 seconds' AS scheduled_5s,
       attempts, last_status, last_error FROM outbox WHERE id = :row2;
UPDATE outbox SET next_attempt_at = now() - interval '1 second' WHERE id = :row2;
SELECT headers ->> 'x-webhook-timestamp' AS ts_before FROM outbox WHERE id = :row2 \gset
SELECT pg_sleep(0.01) IS NOT NULL AS slept;
-- The retry is re-signed with a fresh timestamp and still verifies.
SELECT c.attempt, webhook_verify('native', ARRAY[:'ep_all_secret'], c.body, c.headers) AS retry_verifies,
       (c.headers ->> 'x-webhook-timestamp')::bigint > :ts_before AS fresh_timestamp
FROM claim('w1', 10, '1 hour') c;
-- 429 with Retry-After: never sooner than the receiver asked.
SELECT fail(:row2, 'w1', 429, 'Too Many Requests', '10 minutes') AS after_429;
SELECT next_attempt_at - clock_timestamp() > '9 minutes' AS honours_retry_after FROM outbox WHERE id = :row2;

-- A dead worker's lease expires and another worker takes the row.
UPDATE outbox SET next_attempt_at = now() - interval '1 second' WHERE id = :row2;
SELECT count(*) AS claimed_short_lease FROM claim('dies', 10, '1 millisecond');
SELECT pg_sleep(0.01);
SELECT count(*) AS taken_over FROM claim('w2', 10, '1 hour');
SELECT lease_owner, attempts FROM outbox WHERE id = :row2;
-- The dead worker's late ack is refused.
SELECT ack(:row2, 'dies', 200) AS late_ack;

-- Exhausting the schedule dead-letters; redrive puts it back.
UPDATE endpoints SET retry_schedule = ARRAY['1 second'::interval] WHERE id = :'ep_all';
SELECT fail(:row2, 'w2', 503, 'Service Unavailable') AS after_last_retry;
SELECT count(*) AS claimable_dead FROM claim('w3', 10, '1 hour');
SELECT redrive(:row2) AS redriven, redrive(:row2) AS redriven_twice;
SELECT status, attempts FROM outbox WHERE id = :row2;

-- 410 Gone disables the endpoint; later events skip it.
SELECT count(*) AS claimed FROM claim('w3', 10, '1 hour');
SELECT fail(:row2, 'w3', 410, 'Gone') AS after_410;
SELECT enabled, disabled_reason FROM endpoints WHERE id = :'ep_all';
SELECT webhook_send(:'app', 'payment.created', '{}') AS evt_late \gset
SELECT count(*) AS rows_for_late_event FROM outbox WHERE event_id = :'evt_late';

-- Secrets: rotation signs with both during the grace period.
UPDATE endpoints SET enabled = true WHERE id = :'ep_inv';
SELECT secret AS new_inv_secret FROM rotate_secret(:'ep_inv', '1 hour') \gset
SELECT count(*) FILTER (WHERE active) AS active_secrets FROM secrets s, find_secret(s.hash) f
WHERE s.webhook_id = :'ep_inv';
SELECT webhook_send(:'app', 'invoice.paid', '{"n": 2}') AS evt3 \gset
SELECT array_length(string_to_array(headers ->> 'webhook-signature', ' '), 1) AS signatures,
       webhook_verify('standard', ARRAY[:'new_inv_secret'], body, headers) AS new_secret_verifies
FROM outbox WHERE event_id = :'evt3' AND endpoint_id = :'ep_inv';
-- The secret table holds ciphertext and a hash, never the plaintext.
SELECT bool_and(secret LIKE 'hs1:%' AND position(:'new_inv_secret' IN secret) = 0) AS encrypted,
       bool_or(hash = secret_hash(:'new_inv_secret')) AS hash_stored
FROM secrets WHERE webhook_id = :'ep_inv';
-- The last active secret of an enabled endpoint cannot be revoked; an
-- older one during rotation can.
UPDATE endpoints SET enabled = true WHERE id = :'ep_all';
\set VERBOSITY sqlstate
SELECT revoke_secret(id) FROM secrets WHERE webhook_id = :'ep_all';
\set VERBOSITY default
SELECT revoke_secret(id) AS revoked_old FROM secrets
WHERE webhook_id = :'ep_inv' AND hash <> secret_hash(:'new_inv_secret');
SELECT count(*) FILTER (WHERE f.active) AS active_after_revoke FROM secrets s, find_secret(s.hash) f
WHERE s.webhook_id = :'ep_inv';

-- Server-key rotation without downtime: the new key encrypts, the old one
-- still decrypts, rewrap_secrets() moves every row, deliveries keep signing.
-- (The cluster's key is in its key file: only a session may SET a key.)
SELECT split_part(pg_read_file(current_setting('hookseal.server_key_file')), E'\n', 1) AS old_key \gset
SET hookseal.old_server_keys = :'old_key';
SET hookseal.server_key = '84c78f346df30e7bde5d918d33f081697cd05b6a5800898a9fc99c54759907cd';
SELECT count(*) AS rows_to_rewrap FROM secrets WHERE _needs_rewrap(secret);
SELECT rewrap_secrets(2) AS first_batch;
SELECT rewrap_secrets() > 0 AS rest;
SELECT rewrap_secrets() AS nothing_left;
SELECT webhook_send(:'app', 'invoice.paid', '{"n": 3}') AS evt4 \gset
RESET hookseal.old_server_keys;
-- Without the old key, the rewrapped rows still sign.
SELECT webhook_verify('standard', ARRAY[:'new_inv_secret'], body, headers) AS signs_after_rotation
FROM outbox WHERE event_id = :'evt4' AND endpoint_id = :'ep_inv';
-- Rotate back to the cluster's configured key for the tests that follow.
SET hookseal.server_key = :'old_key';
SET hookseal.old_server_keys = '84c78f346df30e7bde5d918d33f081697cd05b6a5800898a9fc99c54759907cd';
SELECT rewrap_secrets() = (SELECT count(*) FROM secrets) AS rewrapped_back;
RESET hookseal.old_server_keys;
RESET hookseal.server_key;
SELECT count(*) AS rows_to_rewrap FROM secrets WHERE _needs_rewrap(secret);

-- The dispatcher's batch calls. Start from an empty queue.
UPDATE outbox SET status = 'delivered', lease_owner = NULL WHERE status <> 'delivered';
SELECT webhook_send(:'app', 'invoice.paid', '{"n": 5}') AS evt5 \gset
SELECT count(*) AS rows_evt5 FROM outbox WHERE event_id = :'evt5';
-- A fresh first attempt is sent as the trigger signed it (no second signing).
SELECT headers AS signed_by_trigger FROM outbox WHERE event_id = :'evt5' AND endpoint_id = :'ep_all' \gset
SELECT c.headers = :'signed_by_trigger'::jsonb AS kept_trigger_signature
FROM claim('b1', 10, '1 hour') c WHERE c.endpoint_id = :'ep_all';
-- ack_many records the rows this worker holds and ignores the others.
SELECT array_agg(id ORDER BY id) AS evt5_ids FROM outbox WHERE event_id = :'evt5' \gset
SELECT count(*) AS acked_by_stranger FROM ack_many('b2', :'evt5_ids'::bigint[], ARRAY[200, 200]);
SELECT count(*) AS acked FROM ack_many('b1', :'evt5_ids'::bigint[], ARRAY[200, 204]);
SELECT status, last_status, lease_owner FROM outbox WHERE event_id = :'evt5' ORDER BY id;
-- release gives claimed rows back without counting the attempt.
SELECT webhook_send(:'app', 'invoice.paid', '{"n": 6}') AS evt6 \gset
SELECT count(*) AS claimed_evt6 FROM claim('b1', 10, '1 hour');
SELECT array_agg(id ORDER BY id) AS evt6_ids FROM outbox WHERE event_id = :'evt6' \gset
SELECT release('b2', :'evt6_ids'::bigint[]) AS released_by_stranger;
SELECT release('b1', :'evt6_ids'::bigint[]) AS released;
SELECT status, attempts, lease_owner FROM outbox WHERE event_id = :'evt6' ORDER BY id;
SELECT count(*) AS claimable_again FROM claim('b3', 10, '1 hour');

-- Idempotent intake under the caller's id: the second call stores nothing new.
SELECT webhook_send(:'app', 'invoice.paid', '{"n": 7}', 'gh_delivery_42') AS first_send;
SELECT webhook_send(:'app', 'invoice.paid', '{"n": 7}', 'gh_delivery_42') AS second_send;
SELECT count(*) AS events_42 FROM events WHERE id = 'gh_delivery_42';
SELECT count(*) AS rows_42 FROM outbox WHERE event_id = 'gh_delivery_42';
\set VERBOSITY sqlstate
SELECT webhook_send(:'app', 'invoice.paid', '{}', '');
SELECT webhook_send(:'app', 'invoice.paid', '{}', repeat('x', 257));
SELECT webhook_send(:'app', 'invoice.paid', '{}', 'has space');
SELECT webhook_send(:'app', 'invoice.paid', '{}', NULL);
-- The rule is the core's (1 to 256 printable ASCII): the longest is taken.
SELECT _message_id(repeat('x', 256)) = repeat('x', 256) AS longest_id_taken;
\set VERBOSITY default

-- Trace context (0.3.0): the event keeps the sending transaction's W3C
-- traceparent (the hookseal.traceparent setting, or webhook_send's
-- argument), its rows carry it to claim(); a bad one is refused by name
-- and stores nothing.
BEGIN;
SET LOCAL hookseal.traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
SET LOCAL hookseal.tracestate = 'vendor=1';
SELECT webhook_send(:'app', 'trace.set', '{}') AS evt_traced \gset
COMMIT;
SELECT traceparent, tracestate FROM events WHERE id = :'evt_traced';
SELECT count(*) AS rows_with_trace FROM outbox
WHERE event_id = :'evt_traced' AND traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
SELECT webhook_send(:'app', 'trace.arg', '{}', NULL,
                    '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00') AS evt_arg \gset
SELECT traceparent, tracestate IS NULL AS no_state FROM events WHERE id = :'evt_arg';
SELECT traceparent IS NULL AS untraced FROM events WHERE id = :'evt1';
SELECT count(*) AS events_before FROM events \gset
SELECT webhook_send(:'app', 'trace.bad', '{}', NULL, 'not-a-trace');
SELECT webhook_send(:'app', 'trace.bad', '{}', NULL, '00-00000000000000000000000000000000-00f067aa0ba902b7-01');
SELECT webhook_send(:'app', 'trace.bad', '{}', NULL, '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01');
BEGIN;
SET LOCAL hookseal.traceparent = 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
SELECT webhook_send(:'app', 'trace.bad', '{}');
ROLLBACK;
SELECT count(*) = :events_before AS nothing_stored FROM events;
