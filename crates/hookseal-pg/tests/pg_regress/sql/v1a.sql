-- Standard Webhooks v1a (ed25519) in SQL: the vector of
-- tests/vectors/ed25519.json (computed by Python's cryptography) signed and
-- verified; an endpoint whose stored key is a whsk_ pair signs its outbox
-- rows v1a, verifiable with the public key it handed out; refusals.
SET search_path = hookseal, public;

-- webhook_sign with the vector's signing key reproduces its header.
SELECT webhook_sign('standard',
    'whsk_yEayDzGutmeNIEXUtupNOuCHqp6lksmsU07/MOugvk48FoXCanpGE55DRTqcPGR8wuqTDwzyyzQCnjxWWs8NXw==',
    '{"type":"invoice.paid","data":{"id":"in_1","amount":1250,"note":"café ☃"}}',
    'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W', to_timestamp(1735421346)) ->> 'webhook-signature' AS v1a_signature;
-- The public key verifies it; a changed body does not.
SELECT webhook_verify('standard', ARRAY['whpk_PBaFwmp6RhOeQ0U6nDxkfMLqkw8M8ss0Ap48VlrPDV8='],
    '{"type":"invoice.paid","data":{"id":"in_1","amount":1250,"note":"café ☃"}}',
    '{"webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "webhook-timestamp": "1735421346", "webhook-signature": "v1a,1wAOpJMz91xRBc3CQHnHsBvPo6ii4ejZiI0NnzpXoqk0U2lOFlztffUQQzUJGqHR7Lzhkn4vJExI2DTxdesfBg=="}',
    300, to_timestamp(1735421346)) AS verified;
SELECT webhook_verify_reason('standard', ARRAY['whpk_PBaFwmp6RhOeQ0U6nDxkfMLqkw8M8ss0Ap48VlrPDV8='],
    '{"type":"invoice.paid","data":{"id":"in_1","amount":1251,"note":"café ☃"}}',
    '{"webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "webhook-timestamp": "1735421346", "webhook-signature": "v1a,1wAOpJMz91xRBc3CQHnHsBvPo6ii4ejZiI0NnzpXoqk0U2lOFlztffUQQzUJGqHR7Lzhkn4vJExI2DTxdesfBg=="}',
    300, to_timestamp(1735421346)) AS changed_body;
SELECT webhook_public_key('standard',
    'whsk_yEayDzGutmeNIEXUtupNOuCHqp6lksmsU07/MOugvk48FoXCanpGE55DRTqcPGR8wuqTDwzyyzQCnjxWWs8NXw==') AS public_key;

\set VERBOSITY sqlstate
-- A public key cannot sign; a native endpoint has no asymmetric form; a bad key is refused.
SELECT webhook_sign('standard', 'whpk_PBaFwmp6RhOeQ0U6nDxkfMLqkw8M8ss0Ap48VlrPDV8=', '{}');
SELECT webhook_public_key('native', 'whsk_yEayDzGutmeNIEXUtupNOuCHqp6lksmsU07/MOugvk48FoXCanpGE55DRTqcPGR8wuqTDwzyyzQCnjxWWs8NXw==');
SELECT webhook_verify('standard', ARRAY['whpk_AAAA'], '{}', '{}');
\set VERBOSITY default
SELECT webhook_verify_reason('standard', ARRAY['whpk_AAAA'], '{}', '{}') AS bad_key;

-- An endpoint with {"asymmetric": true}: `secret` is the public key, the
-- private key is stored encrypted, and the fan-out signs v1a with it.
SELECT create_app('v1a') AS app \gset
SELECT endpoint_id AS ep, secret AS ep_public
  FROM create_endpoint(:'app', 'http://127.0.0.1:9/v1a', 'standard', NULL, 'default', '{"asymmetric": true}') \gset
SELECT left(:'ep_public', 5) AS handed_out, length(:'ep_public') AS length;
SELECT count(*) AS stored, bool_and(s.secret NOT LIKE '%whsk_%') AS encrypted FROM secrets s WHERE s.webhook_id = :'ep';
SELECT webhook_send(:'app', 'order.created', '{"n": 1}') AS evt \gset
SELECT o.headers ->> 'webhook-signature' LIKE 'v1a,%' AS signed_v1a,
       webhook_verify('standard', ARRAY[:'ep_public'], o.body, o.headers) AS receiver_verifies
FROM outbox o WHERE o.event_id = :'evt';
-- Rotation: a second pair signs beside the first (two v1a items) until the first is revoked.
SELECT public_key AS ep_public2 FROM create_keypair(:'ep') \gset
SELECT webhook_send(:'app', 'order.created', '{"n": 2}') AS evt2 \gset
SELECT array_length(string_to_array(o.headers ->> 'webhook-signature', ' '), 1) AS signatures,
       webhook_verify('standard', ARRAY[:'ep_public2'], o.body, o.headers) AS new_key_verifies
FROM outbox o WHERE o.event_id = :'evt2';
\set VERBOSITY sqlstate
-- A key pair for a scheme without asymmetric signatures: refused.
SELECT endpoint_id AS ep_native FROM create_endpoint(:'app', 'http://127.0.0.1:9/n', 'native') \gset
SELECT create_keypair(:'ep_native');
\set VERBOSITY default
