-- Upgrade from the released 0.1.0 (sql/hookseal--0.1.0.sql, its generated
-- install script, unchanged): install it, fill it, ALTER EXTENSION UPDATE,
-- then the catalog must equal a fresh install of the new version and the old
-- rows must still work.

-- One description of everything the extension owns, one line per fact, sorted:
-- functions (full definition + grants), tables (columns, defaults, constraints,
-- indexes, triggers, grants), types, and the extension's member list.
SELECT $q$
SELECT string_agg(line, E'\n' ORDER BY line) FROM (
    SELECT 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid)
    FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid
    WHERE x.extname = 'hookseal' AND d.deptype = 'e'
  UNION ALL
    SELECT 'function ' || p.oid::regprocedure || E'\n' || pg_get_functiondef(p.oid)
           || E'\n acl ' || coalesce((SELECT string_agg(a.grantee::regrole || ':' || a.privilege_type, ',' ORDER BY 1)
                                      FROM aclexplode(p.proacl) a), 'default')
    FROM pg_proc p WHERE p.pronamespace = 'hookseal'::regnamespace
  UNION ALL
    SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
           || coalesce(' identity ' || nullif(a.attidentity::text, ''), '')
           || coalesce(' acl ' || (SELECT string_agg(x.grantee::regrole || ':' || x.privilege_type, ',' ORDER BY 1)
                                   FROM aclexplode(a.attacl) x), '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    WHERE c.relnamespace = 'hookseal'::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
    SELECT 'relation ' || c.relname || ' ' || c.relkind::text || ' acl '
           || coalesce((SELECT string_agg(x.grantee::regrole || ':' || x.privilege_type, ',' ORDER BY 1)
                        FROM aclexplode(c.relacl) x), 'default')
    FROM pg_class c WHERE c.relnamespace = 'hookseal'::regnamespace
  UNION ALL
    SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = 'hookseal'::regnamespace
  UNION ALL
    SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index
    WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'hookseal'::regnamespace)
  UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger
    WHERE NOT tgisinternal AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'hookseal'::regnamespace)
  UNION ALL
    SELECT 'type ' || t.typname || ' ' || coalesce((SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder)
                                                   FROM pg_enum WHERE enumtypid = t.oid), '')
           || ' acl ' || coalesce((SELECT string_agg(x.grantee::regrole || ':' || x.privilege_type, ',' ORDER BY 1)
                                   FROM aclexplode(t.typacl) x), 'default')
    FROM pg_type t WHERE t.typnamespace = 'hookseal'::regnamespace AND t.typtype IN ('e', 'c', 'd', 'b')
      AND t.typrelid = 0
) AS facts(line)
$q$ AS catalog_sql \gset

CREATE DATABASE hookseal_fresh;
CREATE DATABASE hookseal_upgraded;

-- A fresh install of the current version.
\c hookseal_fresh
CREATE EXTENSION hookseal;
SET search_path = hookseal, public; -- as below: names print alike
SELECT extversion AS fresh_version FROM pg_extension WHERE extname = 'hookseal';
SELECT (:catalog_sql) AS fresh_catalog \gset

-- 0.1.0 as users have it, with data.
\c hookseal_upgraded
CREATE EXTENSION hookseal VERSION '0.1.0';
SET search_path = hookseal, public;
SELECT extversion AS installed FROM pg_extension WHERE extname = 'hookseal';
SELECT create_app('upgrade') AS app \gset
SELECT endpoint_id AS ep_native, secret AS native_secret
  FROM create_endpoint(:'app', 'http://127.0.0.1:9/native', 'native') \gset
SELECT endpoint_id AS ep_hedera, secret AS hedera_secret
  FROM create_endpoint(:'app', 'http://127.0.0.1:9/hedera', 'x-signature') \gset
-- Events written under 0.1.0: their x-signature rows hold the body as jsonb wrote it.
SELECT webhook_send(:'app', 'payment.created', '{"amount": 2.50, "fee": 1.0}') AS evt_old \gset
SELECT webhook_send(:'app', 'payment.created', '{"amount": 3}') AS evt_done \gset
-- One of them already delivered: it stays as it was; the other is given back.
CREATE TEMP TABLE first_claim AS SELECT * FROM claim('w0', 100, '60 seconds');
SELECT count(*) AS claimed FROM first_claim;
SELECT bool_and(ack(c.outbox_id, 'w0', 200)) AS acked FROM first_claim c WHERE c.event_id = :'evt_done';
-- A third event is left in flight by a worker that died (lease run out).
SELECT webhook_send(:'app', 'payment.created', '{"amount": 4}') AS evt_lease \gset
SELECT count(*) AS claimed_by_dead_worker FROM claim('w9', 100, '0 seconds');
SELECT release('w0', array_agg(c.outbox_id)) AS released FROM first_claim c WHERE c.event_id = :'evt_old';
SELECT substring(body FROM '"data":.*$') AS hedera_body_before FROM outbox WHERE event_id = :'evt_old' AND endpoint_id = :'ep_hedera';

ALTER EXTENSION hookseal UPDATE;
SELECT extversion AS updated FROM pg_extension WHERE extname = 'hookseal';

-- The catalog equals the fresh install's, fact for fact.
SELECT (:catalog_sql) = :'fresh_catalog' AS catalog_matches_fresh_install;
SELECT line AS only_after_upgrade FROM unnest(string_to_array((:catalog_sql), E'\n')) line
EXCEPT SELECT unnest(string_to_array(:'fresh_catalog', E'\n'));
SELECT line AS only_in_fresh FROM unnest(string_to_array(:'fresh_catalog', E'\n')) line
EXCEPT SELECT unnest(string_to_array((:catalog_sql), E'\n'));

-- Old rows: the undelivered x-signature row now holds the compact JSON form
-- and is re-signed at its claim; the native row and the delivered row keep
-- their bytes.
SELECT substring(body FROM '"data":.*$') AS hedera_body_after, signed_at = '-infinity' AS must_resign
FROM outbox WHERE event_id = :'evt_old' AND endpoint_id = :'ep_hedera';
SELECT body = event_body(e.id, e.type, e.created_at, e.data) AS native_body_kept
FROM outbox o JOIN events e ON e.id = o.event_id
WHERE o.event_id = :'evt_old' AND o.endpoint_id = :'ep_native';
SELECT status, body = event_body(e.id, e.type, e.created_at, e.data) AS delivered_body_kept
FROM outbox o JOIN events e ON e.id = o.event_id
WHERE o.event_id = :'evt_done' AND o.endpoint_id = :'ep_hedera';

-- Every old endpoint has its delivery state; the dead worker's rows are due.
SELECT count(*) AS endpoints_with_state FROM endpoint_state;
SELECT count(*) AS dead_workers_rows_due FROM outbox
WHERE event_id = :'evt_lease' AND status = 'delivering' AND next_attempt_at <= clock_timestamp();

-- Claimed after the upgrade, every old row verifies with its endpoint's secret.
CREATE TEMP TABLE got AS SELECT * FROM claim('w1', 100, '60 seconds');
SELECT g.event_id = :'evt_lease' AS taken_over, g.endpoint_id = :'ep_hedera' AS hedera,
       webhook_verify(en.scheme,
                      ARRAY[CASE en.id WHEN :'ep_hedera' THEN :'hedera_secret' ELSE :'native_secret' END],
                      g.body, g.headers) AS verifies,
       g.attempt
FROM got g JOIN endpoints en ON en.id = g.endpoint_id
ORDER BY 1, 2;
-- ... and the x-signature row's signature is over exactly the bytes sent.
SELECT g.headers->>'x-signature' = webhook_sign('x-signature', :'hedera_secret', g.body)->>'x-signature'
       AS hedera_signed_exactly_the_body
FROM got g WHERE g.endpoint_id = :'ep_hedera' AND g.event_id = :'evt_old';
SELECT count(*) AS acked_after_upgrade FROM got g WHERE ack(g.outbox_id, 'w1', 200);
-- ... each delivery in the attempt log; the old events' history can be read,
-- and retention applies to rows written under 0.1.0.
SELECT count(*) AS logged_attempts FROM attempts WHERE worker = 'w1' AND error_class = 'ok';
SELECT count(*) AS history_of_old_event FROM event_attempts(:'evt_old');
SELECT retention, dead_retention FROM apps WHERE id = :'app';
UPDATE apps SET retention = '1 second' WHERE id = :'app';
UPDATE events SET created_at = created_at - 10000 WHERE id = :'evt_done';
SELECT maintain() - 'ms' AS old_delivered_event_removed;

-- New events after the upgrade: x-signature rows store and sign the compact form.
SELECT webhook_send(:'app', 'payment.created', '{"n": 1e5, "b": 1, "2": 2}') AS evt_new \gset
SELECT substring(o.body FROM '"data":.*$') AS hedera_new_body,
       webhook_verify('x-signature', ARRAY[:'hedera_secret'], o.body, o.headers) AS verifies
FROM outbox o WHERE o.event_id = :'evt_new' AND o.endpoint_id = :'ep_hedera';

-- Event ids became per app in 0.3.0: the old events keep theirs, and
-- another app may now use one of them.
SELECT create_app('second tenant') AS app2 \gset
SELECT count(*) AS second_endpoint FROM create_endpoint(:'app2', 'http://127.0.0.1:9/second', 'native');
SELECT webhook_send(:'app2', 'payment.created', '{"amount": 9}', :'evt_old') = :'evt_old' AS same_id_other_app;
SELECT app_id = :'app' AS first_app, count(*) FROM outbox WHERE event_id = :'evt_old' GROUP BY 1 ORDER BY 1;

-- 0.2.0 as users have it, with data, updated: the same catalog again.
CREATE DATABASE hookseal_from020;
\c hookseal_from020
CREATE EXTENSION hookseal VERSION '0.2.0';
SET search_path = hookseal, public;
SELECT create_app('upgrade 0.2.0') AS app \gset
SELECT endpoint_id AS ep, secret AS ep_secret
  FROM create_endpoint(:'app', 'http://127.0.0.1:9/v020', 'github', options => '{"max_in_flight": 4}') \gset
SELECT webhook_send(:'app', 'push', '{"n": 1}', 'provider_id_1') AS evt020 \gset
ALTER EXTENSION hookseal UPDATE;
SELECT extversion AS updated_from_020 FROM pg_extension WHERE extname = 'hookseal';
SELECT (:catalog_sql) = :'fresh_catalog' AS catalog_matches_fresh_install_from_020;
SELECT line AS only_after_upgrade_from_020 FROM unnest(string_to_array((:catalog_sql), E'\n')) line
EXCEPT SELECT unnest(string_to_array(:'fresh_catalog', E'\n'));
-- The 0.2.0 row is claimed, verifies, is acked, and its history reads.
UPDATE outbox SET signed_at = '-infinity';
SELECT webhook_verify('github', ARRAY[:'ep_secret'], c.body, c.headers) AS verifies_020,
       ack(c.outbox_id, 'w020', 200) AS acked_020
FROM claim('w020', 10) c;
SELECT count(*) AS history_020 FROM event_attempts(:'evt020', :'app');

\c hookseal_regress
DROP DATABASE hookseal_fresh;
DROP DATABASE hookseal_upgraded;
DROP DATABASE hookseal_from020;
