-- The attempt log, retention, replay and redrive-by-endpoint, and who may
-- read the history.
SET search_path = hookseal, public;
\set VERBOSITY sqlstate
-- This suite counts rows across the tables: start from none.
SET client_min_messages = warning;
TRUNCATE apps, attempts CASCADE;
RESET client_min_messages;

SELECT create_app('history') AS app \gset
SELECT endpoint_id AS ep FROM create_endpoint(:'app', 'http://127.0.0.1:9/h', 'native', NULL,
    'default', '{"failure_threshold": 1000}') \gset
SELECT endpoint_id AS ep2 FROM create_endpoint(:'app', 'http://127.0.0.1:9/h2', 'native', NULL,
    'default', '{"failure_threshold": 1000}') \gset
UPDATE endpoints SET enabled = false WHERE id = :'ep2';

-- A row that fails twice (an HTTP 500, then a timeout) and then succeeds:
-- three attempts in the log, classed, timed, with the answers kept.
SELECT webhook_send(:'app', 'order.paid', '{"n": 1}') AS evt \gset
SELECT attempt, resigned FROM claim('w1');
SELECT fail(o.id, 'w1', 500, 'HTTP 500: boom', NULL, 'http', 1, '2026-01-01 00:00:00+00',
            '2026-01-01 00:00:00.012+00', false, 'text/plain', 'boom')
FROM outbox o WHERE o.event_id = :'evt';
UPDATE outbox SET next_attempt_at = now() WHERE event_id = :'evt';
SELECT attempt, resigned FROM claim('w1');
SELECT fail(o.id, 'w1', NULL, 'timeout: operation timed out', NULL, 'timeout', 2,
            '2026-01-01 00:00:05+00', '2026-01-01 00:00:15+00', true, NULL, NULL)
FROM outbox o WHERE o.event_id = :'evt';
UPDATE outbox SET next_attempt_at = now() WHERE event_id = :'evt';
SELECT attempt, resigned FROM claim('w1');
SELECT count(*) AS recorded FROM ack_many('w1', ARRAY(SELECT id FROM outbox WHERE event_id = :'evt'),
    ARRAY[200], ARRAY[3], ARRAY['2026-01-01 00:01:00+00'::timestamptz],
    ARRAY['2026-01-01 00:01:00.005+00'::timestamptz], ARRAY[true], ARRAY['application/json'],
    ARRAY['{"ok":true}']);
SELECT status, attempt, worker, http_status, error_class, error, duration_ms, response_type,
       response_body, resigned
FROM event_attempts(:'evt');
-- A class the log does not know is logged as other; a long answer is cut to 1 KiB.
SELECT webhook_send(:'app', 'order.paid', '{"n": 2}') AS evt2 \gset
SELECT count(*) FROM claim('w1');
SELECT fail(o.id, 'w1', 502, repeat('e', 5000), NULL, 'martian', 1, now(), now(), false,
            repeat('t', 500), repeat('b', 5000))
FROM outbox o WHERE o.event_id = :'evt2';
SELECT error_class, length(error) AS error_len, length(response_type) AS type_len,
       length(response_body) AS body_len
FROM attempts t JOIN outbox o ON o.id = t.outbox_id WHERE o.event_id = :'evt2';
-- 0.1.0's signatures still log: ack() as ok, fail() as http or other.
UPDATE outbox SET next_attempt_at = now() WHERE event_id = :'evt2';
SELECT count(*) FROM claim('w1');
SELECT fail(o.id, 'w1', NULL, 'connect: refused') FROM outbox o WHERE o.event_id = :'evt2';
UPDATE outbox SET next_attempt_at = now() WHERE event_id = :'evt2';
SELECT count(*) FROM claim('w1');
SELECT ack(o.id, 'w1', 204) FROM outbox o WHERE o.event_id = :'evt2';
SELECT attempt, http_status, error_class, resigned FROM event_attempts(:'evt2');
-- A worker whose lease passed on: not recorded, but its attempt is logged.
SELECT webhook_send(:'app', 'order.paid', '{"n": 3}') AS evt3 \gset
SELECT count(*) FROM claim('w1');
SELECT count(*) AS recorded FROM ack_many('w-late', ARRAY(SELECT id FROM outbox WHERE event_id = :'evt3'),
    ARRAY[200], ARRAY[1], ARRAY[now()], ARRAY[now()], ARRAY[false], ARRAY[NULL::text], ARRAY[NULL::text]);
SELECT fail(o.id, 'w-late', 500, 'HTTP 500', NULL, 'http', 1, now(), now(), false, NULL, NULL)
FROM outbox o WHERE o.event_id = :'evt3';
SELECT status, worker, error_class FROM event_attempts(:'evt3');
SELECT count(*) FROM ack_many('w1', ARRAY(SELECT id FROM outbox WHERE event_id = :'evt3'), ARRAY[200]);

-- Endpoint health over the last hour (durations given above: 12 ms, 10 s, 5 ms, ...).
SELECT endpoint_id = :'ep' AS ep, enabled, circuit, attempts, delivered, success_rate,
       last_status, last_error, queued, dead
FROM endpoint_health('1 hour') ORDER BY 1;
SELECT count(*) AS health_rows FROM endpoint_health('1 hour') WHERE p50_ms IS NOT NULL;
-- An event no endpoint took: one line, no endpoint.
SELECT webhook_send(:'app', 'nobody.cares', '{}', 'evt_nobody') AS evt_nobody \gset
UPDATE endpoints SET event_types = ARRAY['order.paid'] WHERE id = :'ep';
SELECT webhook_send(:'app', 'nobody.cares', '{}', 'evt_nobody2') AS evt_nobody2 \gset
SELECT event_id, type, endpoint_id, status, attempt FROM event_attempts('evt_nobody2');
UPDATE endpoints SET event_types = NULL WHERE id = :'ep';

-- Replay: delivered events of the app since a time go out again under the
-- same ids, re-signed; the attempt numbers start over.
SELECT replay(:'app', now() - interval '1 hour') AS replayed;
SELECT status, count(*) FROM outbox GROUP BY status ORDER BY status;
UPDATE outbox SET signed_at = signed_at - interval '2 minutes'; -- replayed after the first minute
SELECT event_id = :'evt' AS same_id, attempt, resigned FROM claim('w1') WHERE event_id = :'evt';
SELECT replay(:'app', now() + interval '1 hour') AS replayed_future;
SELECT replay('app_none', '-infinity') AS replayed_none;

-- Redrive by endpoint: dead letters since a time go back to the queue.
UPDATE outbox SET status = 'dead', lease_owner = NULL, lease_expires_at = NULL;
UPDATE outbox SET created_at = now() - interval '2 days' WHERE event_id = :'evt2';
SELECT redrive_endpoint(:'ep', now() - interval '1 day') AS redriven;
SELECT event_id = :'evt2' AS is_old, status FROM outbox ORDER BY id;
SELECT redrive_endpoint(:'ep') AS redriven_rest;
SELECT redrive(o.id) FROM outbox o WHERE o.event_id = :'evt2';

-- Retention: exactly the old events whose rows are all delivered go, with
-- their rows and attempts; pending rows, and dead letters within their own
-- retention, keep their event.
TRUNCATE events, outbox, attempts;
UPDATE endpoints SET enabled = true WHERE id = :'ep2';
UPDATE apps SET retention = '1 hour' WHERE id = :'app';
SELECT webhook_send(:'app', 't', '{}', 'evt_old_delivered');
SELECT webhook_send(:'app', 't', '{}', 'evt_old_partly');
SELECT webhook_send(:'app', 't', '{}', 'evt_old_dead');
SELECT webhook_send(:'app', 't', '{}', 'evt_old_pending');
SELECT webhook_send(:'app', 't', '{}', 'evt_new_delivered');
UPDATE outbox SET status = 'delivered' WHERE event_id IN ('evt_old_delivered', 'evt_new_delivered');
UPDATE outbox SET status = 'delivered' WHERE event_id = 'evt_old_partly' AND endpoint_id = :'ep';
UPDATE outbox SET status = 'dead' WHERE event_id = 'evt_old_dead';
INSERT INTO attempts (outbox_id, attempt, endpoint_id, worker, started_at, finished_at, error_class)
SELECT o.id, 1, o.endpoint_id, 'w1', now(), now(), 'ok' FROM outbox o;
UPDATE events SET created_at = created_at - 2 * 3600 * 1000 WHERE id LIKE 'evt_old%';
SELECT maintain() - 'ms' AS maintained;
SELECT id FROM events ORDER BY id;
SELECT count(*) AS attempts_left FROM attempts;
SELECT count(*) AS orphan_attempts FROM attempts t WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.id = t.outbox_id);
-- Dead letters go once older than dead_retention as well.
UPDATE apps SET dead_retention = '1 hour' WHERE id = :'app';
UPDATE outbox SET created_at = now() - interval '2 hours' WHERE event_id = 'evt_old_dead';
SELECT maintain() - 'ms' AS maintained;
SELECT id FROM events ORDER BY id;
-- Bounded calls: max_events per call, "more" while there is more.
UPDATE apps SET retention = '1 second', dead_retention = '1 second' WHERE id = :'app';
UPDATE outbox SET status = 'delivered';
UPDATE events SET created_at = created_at - 10000;
SELECT maintain(1) - 'ms' AS first_call;
SELECT maintain(10, 1) - 'ms' AS second_call;
SELECT maintain(0);
SELECT maintain(10, NULL);
UPDATE apps SET retention = '0 seconds';

-- Who may read the history: the admin; not the writer, not the dispatcher.
SELECT webhook_send(:'app', 't', '{}', 'evt_kept');
CREATE ROLE regress_h_writer IN ROLE hookseal_writer;
CREATE ROLE regress_h_dispatcher IN ROLE hookseal_dispatcher;
CREATE ROLE regress_h_admin IN ROLE hookseal_admin;
SET ROLE regress_h_writer;
SELECT count(*) FROM hookseal.attempts;
SELECT count(*) FROM hookseal.event_attempts('evt_old_delivered');
SELECT hookseal.maintain();
SELECT hookseal.replay(:'app', '-infinity');
RESET ROLE;
SET ROLE regress_h_dispatcher;
SELECT count(*) FROM hookseal.attempts;
SELECT count(*) FROM hookseal.endpoint_health();
SELECT hookseal.redrive_endpoint(:'ep');
SELECT hookseal.maintain() - 'ms' AS dispatcher_maintains;
RESET ROLE;
SET ROLE regress_h_admin;
SELECT count(*) >= 0 AS admin_reads FROM hookseal.attempts;
SELECT count(*) AS health_rows FROM hookseal.endpoint_health();
SELECT count(*) AS history_rows FROM hookseal.event_attempts('evt_kept');
UPDATE hookseal.apps SET retention = '7 days' WHERE id = :'app';
INSERT INTO hookseal.attempts (outbox_id, attempt, endpoint_id, worker, started_at, finished_at, error_class)
VALUES (1, 1, 'x', 'x', now(), now(), 'ok');
RESET ROLE;
DROP ROLE regress_h_writer, regress_h_dispatcher, regress_h_admin;

-- fail() bounds its inputs: a status outside 100-599 is refused (and
-- changes nothing); the error text is kept to 1,000 characters.
TRUNCATE events, outbox, attempts;
UPDATE endpoints SET enabled = false WHERE id = :'ep2';
SELECT webhook_send(:'app', 't', '{}', 'evt_bounds') AS evt_b \gset
SELECT count(*) FROM claim('w1');
SELECT fail(o.id, 'w1', 999, 'HTTP 999') FROM outbox o WHERE o.event_id = :'evt_b';
SELECT fail(o.id, 'w1', 99, 'HTTP 99') FROM outbox o WHERE o.event_id = :'evt_b';
SELECT fail(o.id, 'w1', -1, 'HTTP -1') FROM outbox o WHERE o.event_id = :'evt_b';
SELECT count(*) AS logged, (SELECT status FROM outbox WHERE event_id = :'evt_b') FROM attempts;
SELECT fail(o.id, 'w1', 599, repeat('x', 10000000)) FROM outbox o WHERE o.event_id = :'evt_b';
SELECT length(last_error) AS kept, last_status FROM outbox WHERE event_id = :'evt_b';

-- A destination the dispatcher's policy refuses, or a URL it cannot use,
-- is permanent: dead at once (not retried for days) with the reason, the
-- endpoint stopped with the reason; enable_endpoint() resumes it.
UPDATE outbox SET next_attempt_at = now() WHERE event_id = :'evt_b';
SELECT count(*) FROM claim('w1');
SELECT fail(o.id, 'w1', NULL, 'refused: 10.0.0.1 is not on the allow-list', NULL, 'policy', 2,
            now(), now(), false, NULL, NULL)
FROM outbox o WHERE o.event_id = :'evt_b';
SELECT status, last_error FROM outbox WHERE event_id = :'evt_b';
SELECT enabled, disabled_reason FROM endpoints WHERE id = :'ep';
SELECT error_class FROM attempts ORDER BY finished_at DESC LIMIT 1;
SELECT enable_endpoint(:'ep');
SELECT redrive_endpoint(:'ep') AS redriven;
SELECT count(*) FROM claim('w1');
SELECT fail(o.id, 'w1', NULL, 'invalid URL: invalid port number', NULL, 'invalid', 1,
            now(), now(), false, NULL, NULL)
FROM outbox o WHERE o.event_id = :'evt_b';
SELECT status, last_error FROM outbox WHERE event_id = :'evt_b';
SELECT enabled, disabled_reason FROM endpoints WHERE id = :'ep';
SELECT enable_endpoint(:'ep');

-- The attempt rollup (0.3.0): every attempt counted once; maintain() merges
-- a key's rows; endpoint_health() counts what the log holds and takes its
-- percentiles from the buckets (√2 apart).
SET search_path = hookseal, public;
SELECT (SELECT sum(attempts) FROM attempt_rollup) = (SELECT count(*) FROM attempts) AS rollup_counts_all;
SELECT endpoint_id AS ep_r FROM create_endpoint(:'app', 'http://127.0.0.1:9/r') \gset
INSERT INTO attempts (outbox_id, attempt, endpoint_id, worker, started_at, finished_at, http_status, error_class)
SELECT 0, 1, :'ep_r', 'w', _hour(now()) - interval '30 minutes',
       _hour(now()) - interval '30 minutes' + CASE WHEN g <= 90 THEN interval '10 ms' ELSE interval '1 s' END,
       CASE WHEN g <= 95 THEN 200 ELSE 503 END, CASE WHEN g <= 95 THEN 'ok' ELSE 'http' END
FROM generate_series(1, 100) g;
INSERT INTO attempts (outbox_id, attempt, endpoint_id, worker, started_at, finished_at, http_status, error_class)
VALUES (0, 2, :'ep_r', 'w', _hour(now()) - interval '29 minutes', _hour(now()) - interval '29 minutes' + interval '10 ms', 200, 'ok');
SELECT count(*) AS rollup_rows_before FROM attempt_rollup WHERE endpoint_id = :'ep_r';
SELECT _compact_rollup() > 0 AS merged;
SELECT count(*) AS rollup_rows_after FROM attempt_rollup WHERE endpoint_id = :'ep_r';
SELECT (SELECT sum(attempts) FROM attempt_rollup) = (SELECT count(*) FROM attempts) AS still_all;
SELECT attempts, delivered, success_rate, p50_ms BETWEEN 8 AND 11.4 AS p50_in_its_bucket,
       p99_ms BETWEEN 724 AND 1024 AS p99_in_its_bucket, last_status
FROM endpoint_health('1 day', ARRAY[:'ep_r']);
SELECT bool_and(h.attempts = (SELECT count(*) FROM attempts t WHERE t.endpoint_id = h.endpoint_id
                                AND t.finished_at >= now() - interval '30 minutes')) AS health_matches_log
FROM endpoint_health('30 minutes') h;
SELECT delete_endpoint(:'ep_r');
SELECT count(*) AS rollup_left FROM attempt_rollup WHERE endpoint_id = :'ep_r';
