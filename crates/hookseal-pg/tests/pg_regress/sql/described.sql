-- A described scheme (an eleventh, as JSON) wherever a preset name goes:
-- webhook_sign/webhook_verify, and an endpoint whose outbox rows it signs.
-- What an endpoint cannot deliver with is refused by the column's check.
SET search_path = hookseal, public;
\set acme '{"name": "acme", "algorithm": "sha512", "encoding": "hex", "key": "utf8", "signature": {"header": "Acme-Signature"}, "format": {"tag": "sha512", "tag_separator": "="}, "message": "{body}", "mismatch_status": 401}'

SELECT webhook_sign(:'acme', 'acme-secret', 'hello') AS signed;
SELECT webhook_verify(:'acme', ARRAY['acme-secret'], 'hello',
    webhook_sign(:'acme', 'acme-secret', 'hello')) AS verified;
SELECT scheme_exists(:'acme') AS acme_usable, scheme_exists('github') AS preset_usable;

SELECT create_app('described') AS app \gset
SELECT endpoint_id AS ep, secret AS ep_secret FROM create_endpoint(:'app', 'http://127.0.0.1:9/acme', :'acme') \gset
SELECT webhook_send(:'app', 'order.created', '{"n": 1}') AS evt \gset
SELECT o.headers ? 'Acme-Signature' AS signed_by_acme,
       webhook_verify(:'acme', ARRAY[:'ep_secret'], o.body, o.headers) AS receiver_verifies
FROM outbox o WHERE o.event_id = :'evt';

-- Refused: not a scheme, inconsistent, signature in the URL, named headers.
SELECT scheme_exists('{"name": "broken"}') AS broken,
       scheme_exists('{"name": "x", "algorithm": "sha256", "encoding": "hex", "key": "utf8", "signature": {"header": "X-Sig"}, "message": "{id}.{body}", "mismatch_status": 401}') AS id_without_header,
       scheme_exists('{"name": "q", "algorithm": "sha256", "encoding": "base64", "key": "utf8", "signature": {"query": "sig"}, "message": "{body}", "mismatch_status": 403}') AS in_the_url,
       scheme_exists('{"name": "n", "algorithm": "sha256", "encoding": "hex", "key": "utf8", "signature": {"header": "N-Sig"}, "format": {"tag": "v1", "tag_separator": "=", "list_separator": ","}, "message": "{headers}{body}", "signed_headers": {"tag": "h", "separator": ";"}, "mismatch_status": 401}') AS named_headers;
-- The named-headers description is valid (a receiver verifies with it); an
-- endpoint just cannot deliver with it.
SELECT webhook_verify_reason('{"name": "n", "algorithm": "sha256", "encoding": "hex", "key": "utf8", "signature": {"header": "N-Sig"}, "format": {"tag": "v1", "tag_separator": "=", "list_separator": ","}, "message": "{headers}{body}", "signed_headers": {"tag": "h", "separator": ";"}, "mismatch_status": 401}',
    ARRAY['s'], 'x', '{}') AS named_headers_verify;
\set VERBOSITY sqlstate
SELECT create_endpoint(:'app', 'http://127.0.0.1:9/broken', '{"name": "broken"}');
SELECT webhook_sign('{"name": "broken"}', 's', 'x');
\set VERBOSITY default
SELECT count(*) AS endpoints FROM endpoints WHERE app_id = :'app';
