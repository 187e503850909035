-- Each role tries what it must not do, and is refused.
SET search_path = hookseal, public;
\set VERBOSITY sqlstate

CREATE ROLE regress_stranger LOGIN;
CREATE ROLE regress_writer LOGIN IN ROLE hookseal_writer;
CREATE ROLE regress_dispatcher LOGIN IN ROLE hookseal_dispatcher;
CREATE ROLE regress_admin LOGIN IN ROLE hookseal_admin;
SELECT create_app('sec') AS app \gset
SELECT endpoint_id AS ep, secret AS ep_secret FROM create_endpoint(:'app', 'http://127.0.0.1:9/sec') \gset

-- A role with no grant: no schema, no function, no setting.
SET ROLE regress_stranger;
SELECT count(*) FROM hookseal.secrets;
SELECT hookseal.webhook_sign('github', 's', 'x');
SELECT hookseal._decrypt_secret('e21b8662eb68e7f031663e85.b029');
SHOW hookseal.server_key;
SELECT current_setting('hookseal.server_key');
SELECT count(*) AS visible_key_settings FROM pg_settings WHERE name IN ('hookseal.server_key', 'hookseal.old_server_keys');
RESET ROLE;

-- The writer can send events, and nothing else.
SET ROLE regress_writer;
SELECT hookseal.webhook_send(:'app', 'payment.created', '{"a":1}') IS NOT NULL AS sent;
SELECT count(*) FROM hookseal.secrets;
SELECT count(*) FROM hookseal.outbox;
INSERT INTO hookseal.events (app_id, type, data) VALUES (:'app', 'x', '{}');
SELECT hookseal._decrypt_secret(secret) FROM hookseal.secrets;
SELECT hookseal._sign_stored('native', ARRAY['x'], 'b', 'i', now());
SELECT hookseal.claim('w', 1);
SELECT hookseal.ack_many('w', ARRAY[]::bigint[], ARRAY[]::integer[]);
SELECT hookseal.release('w', ARRAY[]::bigint[]);
SELECT * FROM hookseal.create_secret(:'ep');
SHOW hookseal.server_key;
RESET ROLE;

-- The dispatcher claims signed rows but cannot read a secret or the key.
SET ROLE regress_dispatcher;
SELECT count(*) > 0 AS claimed, bool_and(headers ? 'x-webhook-signature' OR headers ? 'webhook-signature') AS signed
FROM hookseal.claim('d1', 10);
SELECT count(*) AS acked_none FROM hookseal.ack_many('d1', ARRAY[]::bigint[], ARRAY[]::integer[]);
SELECT hookseal.release('d1', ARRAY[]::bigint[]) AS released_none;
SELECT secret FROM hookseal.secrets;
SELECT hookseal._decrypt_secret('e21b8662eb68e7f031663e85.b029');
SELECT hookseal._active_secrets(:'ep');
SELECT hookseal.webhook_send(:'app', 'x', '{}');
SELECT current_setting('hookseal.server_key');
RESET ROLE;

-- The admin manages endpoints and sees hashes, never ciphertext or plaintext.
SET ROLE regress_admin;
SELECT (SELECT count(*) FROM hookseal.create_endpoint(:'app', 'http://127.0.0.1:9/two')) AS created;
SELECT count(hash) AS hashes FROM hookseal.secrets s JOIN hookseal.endpoints e ON e.id = s.webhook_id
WHERE e.app_id = :'app';
SELECT secret FROM hookseal.secrets;
SELECT hookseal._decrypt_secret('e21b8662eb68e7f031663e85.b029');
SELECT hookseal._encrypt_secret('whsec_x');
SELECT current_setting('hookseal.server_key');
RESET ROLE;

-- SECURITY DEFINER functions pin their search_path.
SELECT count(*) AS unpinned_security_definer
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'hookseal' AND p.prosecdef
  AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%');
-- PUBLIC can execute nothing in the schema.
SELECT count(*) AS public_executable
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'hookseal' AND has_function_privilege('public', p.oid, 'EXECUTE');

DROP OWNED BY regress_stranger, regress_writer, regress_dispatcher, regress_admin;
DROP ROLE regress_stranger, regress_writer, regress_dispatcher, regress_admin;
\set VERBOSITY default
