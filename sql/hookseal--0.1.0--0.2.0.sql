-- hookseal 0.1.0 -> 0.2.0
--
-- x-signature and fincra send and sign the compact JSON form of a JSON body,
-- JSON.stringify(JSON.parse(body)), so that receivers that compare raw bytes
-- and receivers that re-serialize (the providers' reference code) both
-- accept. New: webhook_body() (the body a scheme sends) and
-- webhook_sign_message() (that body with its headers). The fan-out trigger
-- stores and signs webhook_body() per endpoint. Outbox rows not yet
-- delivered whose body is not in that form are rewritten, and marked to be
-- re-signed at their next claim (signed_at = -infinity: no kept signature).

\echo Use "ALTER EXTENSION hookseal UPDATE TO '0.2.0'" to load this file. \quit

CREATE  FUNCTION "webhook_body"(
	"scheme" TEXT, /* & str */
	"body" TEXT /* & str */
) RETURNS TEXT /* String */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'webhook_body_wrapper';

CREATE  FUNCTION "webhook_sign_message"(
	"scheme" TEXT, /* Option < & str > */
	"secret" TEXT, /* Option < & str > */
	"body" TEXT, /* Option < & str > */
	"id" TEXT DEFAULT NULL, /* Option < & str > */
	"ts" timestamp with time zone DEFAULT now() /* Option < TimestampWithTimeZone > */
) RETURNS TABLE (
	"body" TEXT,  /* String */
	"headers" jsonb  /* HeadersJson */
)
VOLATILE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'webhook_sign_message_wrapper';

CREATE OR REPLACE FUNCTION _fan_out() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    payload text := event_body(NEW.id, NEW.type, NEW.created_at, NEW.data);
    signed_at timestamptz := clock_timestamp();
BEGIN
    INSERT INTO outbox (event_id, endpoint_id, body, signed_at, headers)
    SELECT NEW.id, e.id, m.body, signed_at,
           _sign_stored(e.scheme,
                        ARRAY(SELECT s.secret FROM secrets s
                              WHERE s.webhook_id = e.id AND s.revoked_at IS NULL
                                AND (s.expires_at IS NULL OR s.expires_at > signed_at)
                              ORDER BY s.created_at DESC),
                        m.body, NEW.id, signed_at)
    FROM endpoints e
    CROSS JOIN LATERAL (SELECT webhook_body(e.scheme, payload) AS body OFFSET 0) m
    WHERE e.app_id = NEW.app_id
      AND e.enabled
      AND (e.event_types IS NULL OR NEW.type = ANY (e.event_types));
    IF FOUND THEN
        PERFORM pg_notify('hookseal_outbox', NEW.app_id);
    END IF;
    RETURN NULL;
END
$$;

UPDATE outbox o
SET body = webhook_body(e.scheme, o.body), signed_at = '-infinity'
FROM endpoints e
WHERE e.id = o.endpoint_id
  AND o.status <> 'delivered'
  AND webhook_body(e.scheme, o.body) <> o.body;

REVOKE ALL ON FUNCTION webhook_sign_message(text, text, text, text, timestamptz),
    webhook_body(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook_sign_message(text, text, text, text, timestamptz),
    webhook_body(text, text)
TO hookseal_writer, hookseal_dispatcher, hookseal_admin;
