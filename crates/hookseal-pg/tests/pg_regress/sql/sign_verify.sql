-- webhook_sign / webhook_verify against vectors from ../shared/vectors.
CREATE EXTENSION hookseal;
SET search_path = hookseal, public;

-- standard (Standard Webhooks' own test vector)
SELECT webhook_sign('standard', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '{"test": 2432232314}',
                    'msg_p5jXN8AQM9LWM0D4loKWxJek', to_timestamp(1614265330));
SELECT webhook_verify('standard', ARRAY['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'], '{"test": 2432232314}',
    '{"webhook-id":"msg_p5jXN8AQM9LWM0D4loKWxJek","webhook-timestamp":"1614265330",
      "webhook-signature":"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}', 300, to_timestamp(1614265330));
-- 301 s later: too old
SELECT webhook_verify_reason('standard', ARRAY['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'], '{"test": 2432232314}',
    '{"webhook-id":"msg_p5jXN8AQM9LWM0D4loKWxJek","webhook-timestamp":"1614265330",
      "webhook-signature":"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}', 300, to_timestamp(1614265631));
-- only an unknown version matches: skipped, so no match
SELECT webhook_verify_reason('standard', ARRAY['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'], '{"test": 2432232314}',
    '{"webhook-id":"msg_p5jXN8AQM9LWM0D4loKWxJek","webhook-timestamp":"1614265330",
      "webhook-signature":"v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}',
    300, to_timestamp(1614265330));

-- native: milliseconds in the timestamp header
SELECT webhook_sign('native', 'whsec_GaoRmZbLzZ0DNy0inDfFQ',
    '{"id":"evt_QqTq1MDQ5Aep4B77BAiPu","type":"payment.created","timestamp":1735421053529,"data":{"id":"seti_UDZWc1BLFPmvbuoR0q0Mg2iT","object":"setup_intent","application":null,"created":1686089970,"livemode":false,"metadata":{},"payment_method_types":["card"],"status":"requires_confirmation","amount":1250,"note":"café ☃ \"quoted\" / slash"}}',
    'evt_QqTq1MDQ5Aep4B77BAiPu', to_timestamp(1735421346)) ->> 'x-webhook-signature' AS native_signature;

-- x-signature: the pretty-printed body verifies by compact re-serialization
SELECT webhook_verify('x-signature', ARRAY['pwaKGYs638fjjpwEuJFFczsYfbD3O7Kg'],
    E'{\n  "consensusTimestamp": {\n    "seconds": 1735421346,\n    "nanos": 12345\n  },\n  "topicId": "0.0.17386",\n  "message": "hello é",\n  "sequenceNumber": 350\n}',
    '{"x-signature":"fb8a1f378fb7178c19c8b354e2f4107a2856d6c405abd854a151e3133adee683"}');
-- ... and a changed value does not
SELECT webhook_verify_reason('x-signature', ARRAY['pwaKGYs638fjjpwEuJFFczsYfbD3O7Kg'],
    '{"consensusTimestamp":{"seconds":1735421346,"nanos":12345},"topicId":"0.0.17386","message":"hello é","sequenceNumber":351}',
    '{"x-signature":"fb8a1f378fb7178c19c8b354e2f4107a2856d6c405abd854a151e3133adee683"}');

-- github, as bytea, and with a wrong secret
SELECT webhook_verify('github', ARRAY['It''s a Secret to Everybody'], convert_to('Hello, World!', 'UTF8'),
    '{"X-Hub-Signature-256":"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}');
SELECT webhook_verify_reason('github', ARRAY['wrong', 'also wrong'], 'Hello, World!',
    '{"X-Hub-Signature-256":"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}');

-- signed-url: the signature is in the URL, the message is the body's externalId
SELECT webhook_verify('signed-url', ARRAY['70-zHZWhaD7kkhgCBbzeog2C'],
    '{"externalId":"pay_okARi4tu6T","status":"COMPLETED","id":"RuSU-MFjvY1P"}', NULL, 300, now(),
    'https://receiver.example/flash?signature=aKkeJ74LbbSAvFtBu%2BRvS8nl4Lbx1GEdwfiOywGNKaY%3D');

-- Rotation: two secrets, two signatures; either secret verifies.
WITH s AS (
    SELECT webhook_sign('standard', ARRAY['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD'],
                        '{}', 'msg_1', now()) AS h
)
SELECT array_length(string_to_array(h ->> 'webhook-signature', ' '), 1) AS signatures,
       webhook_verify('standard', ARRAY['whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD'], '{}', h) AS second_secret_verifies
FROM s;

-- NULL anywhere is false, never NULL
SELECT webhook_verify('github', NULL, 'x', '{}') AS null_secrets,
       webhook_verify('github', ARRAY['s'], NULL::text, '{}') AS null_body,
       webhook_verify('github', ARRAY['s'], 'x', NULL) AS null_headers,
       webhook_verify(NULL, ARRAY['s'], 'x', '{}') AS null_scheme;
SELECT webhook_verify_reason('github', ARRAY['s'], 'x', '{}');
SELECT webhook_verify_reason('github', ARRAY['s'], 'x', '{"X-Hub-Signature-256":"sha256=ZZ"}');

-- Bad arguments are errors with SQLSTATEs, not crashes
\set VERBOSITY sqlstate
SELECT webhook_sign('nope', 'secret', 'x');
SELECT webhook_sign('standard', 'whsec_not base64!', 'x');
SELECT webhook_sign('x-signature', 'short', 'x');
SELECT _decrypt_secret('not.hex');
\set VERBOSITY default

-- Secrets at rest: the design documents' example decrypts once its key is
-- listed as an old key (what a server-key rotation looks like); hash matches.
SET hookseal.old_server_keys = '1d28023fc6320b42781a4d811465e3a23b2a4f21340e27c06e683c1e987ed5f9';
SELECT _decrypt_secret('e21b8662eb68e7f031663e85.b029e0c3c1557db59b035b5a1c377ca68148950acc49bc17c7e15db25dd63421a8ad55bb7e9960a8fb36a3') = 'whsec_yxrTwIuHnHs9Wwb9LdYD6' AS decrypts,
       secret_hash('whsec_yxrTwIuHnHs9Wwb9LdYD6') = '2dae15292d45e7ac7aadea0ddc9d783f8fe6a0f50652851668e7a814bfe8dbd0' AS hash_matches;
SELECT _decrypt_secret(_encrypt_secret('whsec_round_trip')) = 'whsec_round_trip' AS round_trip,
       _encrypt_secret('whsec_x') <> _encrypt_secret('whsec_x') AS fresh_iv,
       _encrypt_secret('whsec_x') LIKE 'hs1:%' AS versioned;
-- Rewrapping moves a documents'-format secret under the primary key.
SELECT _needs_rewrap('e21b8662eb68e7f031663e85.b029e0c3c1557db59b035b5a1c377ca68148950acc49bc17c7e15db25dd63421a8ad55bb7e9960a8fb36a3') AS needs_rewrap,
       _decrypt_secret(_rewrap('e21b8662eb68e7f031663e85.b029e0c3c1557db59b035b5a1c377ca68148950acc49bc17c7e15db25dd63421a8ad55bb7e9960a8fb36a3')) AS rewrapped_decrypts;
RESET hookseal.old_server_keys;

-- The key can come from a file instead; only its path is a setting.
COPY (SELECT '84c78f346df30e7bde5d918d33f081697cd05b6a5800898a9fc99c54759907cd') TO '/tmp/hookseal_regress.key';
ALTER SYSTEM SET hookseal.server_key_file = '/tmp/hookseal_regress.key';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5) IS NOT NULL AS waited;
SET hookseal.server_key = '';
SELECT _decrypt_secret('3aa22d8c952edc17cc8dccd9.1b432dc9bc1200756fc76a55bf6be9650614493b8942219b5c909c8eed5bbdc79b344de0065d23f73afe2f') AS from_key_file;
RESET hookseal.server_key;
ALTER SYSTEM RESET hookseal.server_key_file;
SELECT pg_reload_conf();
