-- Delivery flow control in SQL: per-endpoint room in claim(), max_in_flight,
-- FIFO endpoints, rate slots, the circuit breaker, disabling and
-- re-enabling, endpoint options.
SET search_path = hookseal, public;
-- This suite counts claimed rows: start from none (the suites before it
-- leave rows of their own endpoints, which a portable run does not have).
SET client_min_messages = warning;
TRUNCATE apps, attempts CASCADE;
RESET client_min_messages;

SELECT create_app('flow') AS app \gset
SELECT endpoint_id AS ep_a FROM create_endpoint(:'app', 'http://127.0.0.1:9/a', 'native') \gset
SELECT endpoint_id AS ep_b FROM create_endpoint(:'app', 'http://127.0.0.1:9/b', 'native',
                                                options => '{"max_in_flight": 3}') \gset
SELECT count(webhook_send(:'app', 'order.created', jsonb_build_object('n', g))) AS sent
FROM generate_series(1, 20) g;
SELECT count(*) AS state_rows FROM endpoint_state WHERE endpoint_id IN (:'ep_a', :'ep_b');

-- Room: this worker's ceiling per endpoint (5 here), and b's max_in_flight
-- (3) across every worker.
CREATE TEMP TABLE c1 AS SELECT * FROM claim('w1', 100, '1 hour', 5);
SELECT endpoint_id = :'ep_a' AS a, count(*) FROM c1 GROUP BY 1 ORDER BY 1;
SELECT count(*) AS w1_again FROM claim('w1', 100, '1 hour', 5);
CREATE TEMP TABLE c2 AS SELECT * FROM claim('w2', 100, '1 hour', 5);
SELECT endpoint_id = :'ep_a' AS a, count(*) FROM c2 GROUP BY 1 ORDER BY 1;
-- Acks free the room.
SELECT count(*) AS acked FROM c1, LATERAL ack_many('w1', ARRAY[c1.outbox_id], ARRAY[200]);
SELECT endpoint_id = :'ep_a' AS a, count(*) FROM claim('w1', 100, '1 hour', 5) GROUP BY 1 ORDER BY 1;
-- The batch bounds the total; the most overdue endpoint goes first.
SELECT count(*) AS batch_of_2 FROM claim('w3', 2, '1 hour', 5);
-- Endpoints the worker says it holds enough of are left out.
SELECT count(*) AS skipped_a_and_b FROM claim('w4', 100, '1 hour', 5, ARRAY[:'ep_a', :'ep_b']);
SELECT count(*) > 0 AS not_skipped FROM claim('w4', 100, '1 hour', 5, ARRAY[:'ep_b']) WHERE endpoint_id = :'ep_a';

-- Options: unknown keys and bad values are refused, nothing changes.
\set SHOW_CONTEXT never
SELECT alter_endpoint(:'ep_a', '{"rate_limit": 10, "colour": "red"}');
SELECT alter_endpoint(:'ep_a', '{"max_in_flight": 0}');
SELECT alter_endpoint(:'ep_a', '[1]');
SELECT alter_endpoint(:'ep_a', '{"url": "ftp://example.com/x"}');
SELECT alter_endpoint(:'ep_a', '{"max_in_flight": "many"}');
SELECT alter_endpoint(:'ep_a', '{"failure_threshold": null}');
SELECT rate_limit, max_in_flight FROM endpoints WHERE id = :'ep_a';
SELECT alter_endpoint('wh_missing', '{}') AS missing;
\set SHOW_CONTEXT errors

-- Rate limit: the next second's slots, spaced 1/rate apart, across workers.
SELECT endpoint_id AS ep_r FROM create_endpoint(:'app', 'http://127.0.0.1:9/r', 'native',
                                                options => '{"rate_limit": 4}') \gset
UPDATE endpoints SET enabled = false WHERE id IN (:'ep_a', :'ep_b');
SELECT count(webhook_send(:'app', 'order.created', jsonb_build_object('n', g))) AS sent
FROM generate_series(1, 10) g;
SELECT count(*) AS slots, round(min(send_delay)::numeric, 2) AS first,
       round(max(send_delay)::numeric, 2) AS last
FROM claim('w1', 100, '1 hour', 32);
-- Another worker finds at most the slot at the second's edge.
SELECT count(*) <= 1 AS at_most_the_edge_slot FROM claim('w2', 100, '1 hour', 32);
UPDATE endpoint_state SET rate_tat = clock_timestamp() - interval '1 second' WHERE endpoint_id = :'ep_r';
SELECT count(*) AS slots_again FROM claim('w2', 100, '1 hour', 32);
UPDATE endpoints SET enabled = false WHERE id = :'ep_r';

-- FIFO: only the oldest undelivered row, one at a time; a failure holds
-- the line; a dead letter lets it move on.
SELECT endpoint_id AS ep_f FROM create_endpoint(:'app', 'http://127.0.0.1:9/f', 'native',
                                                options => '{"ordered": true}') \gset
UPDATE endpoints SET retry_schedule = '{1 hour}' WHERE id = :'ep_f';
SELECT webhook_send(:'app', 'order.created', '{"n": 1}') AS f1 \gset
SELECT webhook_send(:'app', 'order.created', '{"n": 2}') AS f2 \gset
SELECT webhook_send(:'app', 'order.created', '{"n": 3}') AS f3 \gset
SELECT bool_and(ordered) AS rows_marked_ordered FROM outbox WHERE endpoint_id = :'ep_f';
CREATE TEMP TABLE f AS SELECT * FROM claim('w1', 100, '1 hour', 32);
SELECT event_id = :'f1' AS head_first, count(*) FROM f GROUP BY 1;
SELECT count(*) AS while_head_in_flight FROM claim('w2', 100, '1 hour', 32);
SELECT fail(outbox_id, 'w1', 500, 'boom') AS head_failed FROM f;
SELECT count(*) AS while_head_waits FROM claim('w2', 100, '1 hour', 32);
UPDATE outbox SET next_attempt_at = clock_timestamp() WHERE event_id = :'f1' AND endpoint_id = :'ep_f';
CREATE TEMP TABLE f2 AS SELECT * FROM claim('w2', 100, '1 hour', 32);
SELECT event_id = :'f1' AS head_retried, attempt FROM f2;
SELECT fail(outbox_id, 'w2', 500, 'boom again') AS head_dead FROM f2;
SELECT event_id = :'f2' AS next_in_line FROM claim('w2', 100, '1 hour', 32);
-- Turning ordered off releases the rest to normal claims.
UPDATE endpoints SET ordered = false WHERE id = :'ep_f';
SELECT bool_or(ordered) AS still_ordered FROM outbox WHERE endpoint_id = :'ep_f' AND status = 'pending';
UPDATE endpoints SET enabled = false WHERE id = :'ep_f';

-- Circuit breaker: 2 failures in a row open it; rows then wait, unattempted;
-- one probe after probe_interval; a failed probe doubles the wait; a
-- delivery closes it.
SELECT endpoint_id AS ep_c FROM create_endpoint(:'app', 'http://127.0.0.1:9/c', 'native',
    options => '{"failure_threshold": 2, "probe_interval": "1 minute"}') \gset
UPDATE endpoints SET retry_schedule = array_fill('1 second'::interval, ARRAY[10]), retry_jitter = 0
WHERE id = :'ep_c';
SELECT count(webhook_send(:'app', 'order.created', jsonb_build_object('n', g))) AS sent
FROM generate_series(1, 5) g;
CREATE TEMP TABLE cc AS SELECT * FROM claim('w1', 2, '1 hour', 32);
SELECT count(*) AS failed FROM cc WHERE fail(cc.outbox_id, 'w1', 503, 'down') = 'pending';
SELECT circuit, consecutive_failures, next_probe_at - opened_at AS probe_after FROM endpoint_state
WHERE endpoint_id = :'ep_c';
UPDATE outbox SET next_attempt_at = clock_timestamp() WHERE endpoint_id = :'ep_c' AND status = 'pending';
SELECT count(*) AS while_open FROM claim('w1', 100, '1 hour', 32);
SELECT sum(attempts) AS attempts_so_far FROM outbox WHERE endpoint_id = :'ep_c';
UPDATE endpoint_state SET next_probe_at = clock_timestamp() WHERE endpoint_id = :'ep_c';
CREATE TEMP TABLE probe AS SELECT * FROM claim('w1', 100, '1 hour', 32);
SELECT count(*) AS probes FROM probe;
SELECT count(*) AS second_probe FROM claim('w2', 100, '1 hour', 32);
SELECT fail(outbox_id, 'w1', 503, 'still down') AS probe_failed FROM probe;
SELECT circuit, probe_backoff, next_probe_at - clock_timestamp() > interval '119 seconds' AS waits_longer
FROM endpoint_state WHERE endpoint_id = :'ep_c';
UPDATE endpoint_state SET next_probe_at = clock_timestamp() WHERE endpoint_id = :'ep_c';
CREATE TEMP TABLE probe2 AS SELECT * FROM claim('w1', 100, '1 hour', 32);
SELECT count(*) AS acked FROM probe2 WHERE ack(probe2.outbox_id, 'w1', 200);
SELECT circuit, consecutive_failures, failing_since IS NULL AS healthy FROM endpoint_state
WHERE endpoint_id = :'ep_c';
SELECT count(*) AS after_close FROM claim('w1', 100, '1 hour', 32);

-- Failing for disable_after disables the endpoint with a reason; rows stay;
-- enable_endpoint() turns it back on with a closed circuit.
SELECT endpoint_id AS ep_d FROM create_endpoint(:'app', 'http://127.0.0.1:9/d', 'native',
    options => '{"disable_after": "1 hour"}') \gset
UPDATE endpoints SET enabled = false WHERE id = :'ep_c';
SELECT webhook_send(:'app', 'order.created', '{"n": 1}') AS d1 \gset
UPDATE endpoint_state SET failing_since = clock_timestamp() - interval '2 hours', consecutive_failures = 40
WHERE endpoint_id = :'ep_d';
SELECT fail(outbox_id, 'w1', 500, 'down') AS failed FROM claim('w1', 100, '1 hour', 32);
SELECT enabled, disabled_reason ~ '^failing since .* \(41 failed attempts in a row\); re-enable with hookseal.enable_endpoint\(\)$' AS reason
FROM endpoints WHERE id = :'ep_d';
SELECT status FROM outbox WHERE event_id = :'d1' AND endpoint_id = :'ep_d';
SELECT enable_endpoint(:'ep_d') AS enabled, enable_endpoint('wh_missing') AS missing;
SELECT e.enabled, e.disabled_reason, s.circuit, s.consecutive_failures
FROM endpoints e JOIN endpoint_state s ON s.endpoint_id = e.id WHERE e.id = :'ep_d';
SELECT endpoint_id = :'ep_d' AS ep_d, enabled, circuit, in_flight, pending
FROM endpoint_status WHERE endpoint_id = :'ep_d';
-- JSON null clears max_in_flight (as the console's empty field sends it; it
-- used to fail to cast null to numeric).
SELECT alter_endpoint(:'ep_d', '{"max_in_flight": 4}'), alter_endpoint(:'ep_d', '{"max_in_flight": null}');
SELECT max_in_flight IS NULL AS no_limit FROM endpoints WHERE id = :'ep_d';
