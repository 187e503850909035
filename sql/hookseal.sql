-- hookseal: tables, triggers, roles and grants. Included at the end of the
-- extension's install script (after the Rust functions it calls).
--
-- Security model
--   PUBLIC has nothing: no schema usage, no table, no function.
--   hookseal_writer      may call webhook_send() (and sign/verify helpers).
--   hookseal_dispatcher  may claim(), ack(), fail() outbox rows; it sees bodies
--                        and signed headers, never a secret.
--   hookseal_admin       manages apps, endpoints and secrets; reads every table
--                        except the encrypted secrets.
--   Functions that decrypt are SECURITY DEFINER with a pinned search_path; the
--   Rust functions that touch keys (_encrypt_secret, _decrypt_secret,
--   _sign_stored, _rewrap, _needs_rewrap) are executable by the owner only.

DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hookseal_writer') THEN
        CREATE ROLE hookseal_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hookseal_dispatcher') THEN
        CREATE ROLE hookseal_dispatcher NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hookseal_admin') THEN
        CREATE ROLE hookseal_admin NOLOGIN;
    END IF;
END
$roles$;

-- Retry schedules -----------------------------------------------------------

CREATE FUNCTION retry_schedule(preset text) RETURNS interval[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    SELECT CASE preset
        WHEN 'default' THEN ARRAY['5 seconds', '5 minutes', '30 minutes', '2 hours',
                                  '5 hours', '10 hours', '10 hours']::interval[]
        WHEN 'flinks' THEN array_fill('30 minutes'::interval, ARRAY[10])
    END
$$;

-- Tables ----------------------------------------------------------------------

CREATE TABLE apps (
    id          text PRIMARY KEY DEFAULT new_id('app'),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE endpoints (
    id               text PRIMARY KEY DEFAULT new_id('wh'),
    app_id           text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    url              text NOT NULL CHECK (url ~ '^https?://[^\s]+$'),
    scheme           text NOT NULL DEFAULT 'native' CHECK (scheme_exists(scheme) AND scheme <> 'signed-url'),
    event_types      text[],                     -- NULL: every type
    enabled          boolean NOT NULL DEFAULT true,
    disabled_reason  text,
    retry_schedule   interval[] NOT NULL DEFAULT retry_schedule('default')
                     CHECK (cardinality(retry_schedule) BETWEEN 1 AND 100),
    retry_jitter     real NOT NULL DEFAULT 0.2 CHECK (retry_jitter >= 0 AND retry_jitter < 1),
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX endpoints_app ON endpoints (app_id) WHERE enabled;

CREATE TABLE secrets (
    id           text PRIMARY KEY DEFAULT new_id('secret'),
    webhook_id   text NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    secret       text NOT NULL,                  -- AES-256-GCM, never plaintext
    hash         text NOT NULL UNIQUE,           -- hex(sha256(secret))
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at   timestamptz,                    -- end of a rotation's grace period
    revoked_at   timestamptz
);
CREATE INDEX secrets_endpoint ON secrets (webhook_id, created_at DESC);

CREATE TABLE events (
    id          text PRIMARY KEY DEFAULT new_id('evt'),
    type        text NOT NULL CHECK (type <> ''),
    app_id      text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    created_at  bigint NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
    data        jsonb NOT NULL
);

CREATE TYPE outbox_status AS ENUM ('pending', 'delivering', 'delivered', 'dead');

CREATE TABLE outbox (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id          text NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    endpoint_id       text NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    body              text NOT NULL,
    headers           jsonb NOT NULL,
    status            outbox_status NOT NULL DEFAULT 'pending',
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    lease_owner       text,
    lease_expires_at  timestamptz,
    last_status       integer,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    signed_at         timestamptz NOT NULL DEFAULT clock_timestamp(), -- when `headers` were signed
    delivered_at      timestamptz,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status IN ('pending', 'delivering');

-- Signing ---------------------------------------------------------------------

-- The active secrets of an endpoint, newest first.
CREATE FUNCTION _active_secrets(endpoint text) RETURNS text[]
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT coalesce(array_agg(s.secret ORDER BY s.created_at DESC), '{}')
    FROM secrets s
    WHERE s.webhook_id = endpoint
      AND s.revoked_at IS NULL
      AND (s.expires_at IS NULL OR s.expires_at > clock_timestamp())
$$;

-- Fan an event out to every matching enabled endpoint, signed in the same
-- transaction, and wake the dispatchers. Each row stores the body its
-- endpoint's scheme sends (webhook_body: the compact JSON form for
-- x-signature and fincra, the event body as it is otherwise), and that body
-- is what is signed. The secrets lookup repeats
-- _active_secrets' predicate on purpose: calling a SQL function per row here
-- (SECURITY DEFINER or not) measured 0.80x of the unsigned-insert throughput
-- in bench/pg.sh, against 1.0x with the subquery inlined.
CREATE FUNCTION _fan_out() RETURNS trigger
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

CREATE TRIGGER events_fan_out AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION _fan_out();

-- Writing events ------------------------------------------------------------

CREATE FUNCTION webhook_send(app text, type text, data jsonb) RETURNS text
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    INSERT INTO events (app_id, type, data) VALUES (app, type, data) RETURNING id
$$;

-- The same with the caller's event id (a provider's message id, say), for
-- idempotent intake: when an event with that id is already stored, nothing
-- is inserted or fanned out again, and the id is returned all the same.
CREATE FUNCTION webhook_send(app text, type text, data jsonb, event_id text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    IF event_id IS NULL OR length(event_id) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'event id must be 1 to 200 characters' USING ERRCODE = '22023';
    END IF;
    INSERT INTO events (id, app_id, type, data) VALUES (event_id, app, type, data)
    ON CONFLICT (id) DO NOTHING;
    RETURN event_id;
END
$$;

-- Dispatching -----------------------------------------------------------------

-- Claim up to `batch` due rows for `worker` for `lease`. A first attempt
-- whose headers were signed in the last minute (by the fan-out trigger) is
-- sent as signed; anything else is re-signed now, so a retry hours later is
-- inside the receiver's tolerance. Rows whose lease expired (a worker died)
-- are due again.
CREATE FUNCTION claim(worker text, batch integer DEFAULT 100, lease interval DEFAULT '60 seconds')
RETURNS TABLE (outbox_id bigint, event_id text, endpoint_id text, url text, body text, headers jsonb, attempt integer)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    WITH due AS (
        SELECT o.id
        FROM outbox o
        JOIN endpoints e ON e.id = o.endpoint_id AND e.enabled
        WHERE (o.status = 'pending' AND o.next_attempt_at <= clock_timestamp())
           OR (o.status = 'delivering' AND o.lease_expires_at <= clock_timestamp())
        ORDER BY o.next_attempt_at
        LIMIT greatest(batch, 0)
        FOR UPDATE OF o SKIP LOCKED
    ), fresh AS (
        SELECT o.id, (o.attempts = 0 AND o.signed_at > clock_timestamp() - interval '60 seconds') AS keep
        FROM outbox o JOIN due ON due.id = o.id
    )
    UPDATE outbox o
    SET status = 'delivering',
        lease_owner = worker,
        lease_expires_at = clock_timestamp() + lease,
        attempts = o.attempts + 1,
        signed_at = CASE WHEN fresh.keep THEN o.signed_at ELSE clock_timestamp() END,
        headers = CASE WHEN fresh.keep THEN o.headers
                       ELSE _sign_stored(e.scheme, _active_secrets(o.endpoint_id), o.body,
                                         o.event_id, clock_timestamp()) END
    FROM fresh, endpoints e
    WHERE o.id = fresh.id AND e.id = o.endpoint_id
    RETURNING o.id, o.event_id, o.endpoint_id, e.url, o.body, o.headers, o.attempts
$$;

-- Record a delivery. False when `worker` no longer holds the lease.
CREATE FUNCTION ack(outbox_id bigint, worker text, http_status integer) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    WITH done AS (
        UPDATE outbox
        SET status = 'delivered', delivered_at = clock_timestamp(), last_status = http_status,
            last_error = NULL, lease_owner = NULL, lease_expires_at = NULL
        WHERE id = outbox_id AND lease_owner = worker AND status = 'delivering'
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM done)
$$;

-- Record many deliveries in one statement (the dispatcher's batched ack).
-- Returns the ids that were recorded; an id missing from the answer had lost
-- its lease (another worker took it over).
CREATE FUNCTION ack_many(worker text, outbox_ids bigint[], http_statuses integer[])
RETURNS SETOF bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    UPDATE outbox o
    SET status = 'delivered', delivered_at = clock_timestamp(), last_status = a.http_status,
        last_error = NULL, lease_owner = NULL, lease_expires_at = NULL
    FROM unnest(outbox_ids, http_statuses) AS a(id, http_status)
    WHERE o.id = a.id AND o.lease_owner = worker AND o.status = 'delivering'
    RETURNING o.id
$$;

-- Give claimed rows back without counting the attempt (a worker shutting
-- down before it sent them). Returns how many rows were released.
CREATE FUNCTION release(worker text, outbox_ids bigint[]) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    WITH r AS (
        UPDATE outbox o
        SET status = 'pending', attempts = greatest(o.attempts - 1, 0),
            next_attempt_at = clock_timestamp(), lease_owner = NULL, lease_expires_at = NULL
        WHERE o.id = ANY (outbox_ids) AND o.lease_owner = worker AND o.status = 'delivering'
        RETURNING 1
    )
    SELECT count(*)::integer FROM r
$$;

-- Record a failed attempt and schedule the next one on the endpoint's
-- policy (+-jitter; never sooner than retry_after), dead-letter after the
-- last, disable the endpoint on 410 Gone. Returns the row's new status, or
-- NULL when `worker` no longer holds the lease.
CREATE FUNCTION fail(outbox_id bigint, worker text, http_status integer, error text,
                     retry_after interval DEFAULT NULL)
RETURNS outbox_status
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    row outbox;
    ep endpoints;
    delay interval;
    next_status outbox_status;
BEGIN
    SELECT * INTO row FROM outbox o
    WHERE o.id = outbox_id AND o.lease_owner = worker AND o.status = 'delivering'
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT * INTO ep FROM endpoints WHERE id = row.endpoint_id;
    IF http_status = 410 THEN
        UPDATE endpoints SET enabled = false, disabled_reason = '410 Gone from the receiver'
        WHERE id = ep.id;
        next_status := 'dead';
    ELSIF row.attempts > cardinality(ep.retry_schedule) THEN
        next_status := 'dead';
    ELSE
        delay := ep.retry_schedule[row.attempts] * (1 + ep.retry_jitter * (2 * random() - 1));
        delay := greatest(delay, coalesce(retry_after, '0'::interval));
        next_status := 'pending';
    END IF;
    UPDATE outbox o
    SET status = next_status,
        next_attempt_at = CASE WHEN next_status = 'pending' THEN clock_timestamp() + delay
                               ELSE o.next_attempt_at END,
        last_status = http_status,
        last_error = left(error, 1000),
        lease_owner = NULL,
        lease_expires_at = NULL
    WHERE o.id = outbox_id;
    RETURN next_status;
END
$$;

-- Put a dead-lettered row back in the queue. True when a row was re-driven.
CREATE FUNCTION redrive(outbox_id bigint) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    WITH r AS (
        UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = clock_timestamp(),
                          last_error = NULL
        WHERE id = outbox_id AND status = 'dead'
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM r)
$$;

-- Administration --------------------------------------------------------------

CREATE FUNCTION create_app(name text) RETURNS text
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    INSERT INTO apps (name) VALUES (name) RETURNING id
$$;

-- A new secret for an endpoint. The plaintext is returned here, once; only
-- its ciphertext and hash are stored.
CREATE FUNCTION create_secret(endpoint text, OUT secret_id text, OUT secret text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    ep_scheme text;
BEGIN
    SELECT e.scheme INTO ep_scheme FROM endpoints e WHERE e.id = endpoint;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'hookseal: no endpoint %', endpoint USING ERRCODE = 'no_data_found';
    END IF;
    secret := _new_secret(ep_scheme);
    INSERT INTO secrets (webhook_id, secret, hash)
    VALUES (endpoint, _encrypt_secret(secret), secret_hash(secret))
    RETURNING id INTO secret_id;
END
$$;

CREATE FUNCTION create_endpoint(app text, url text, scheme text DEFAULT 'native',
                                event_types text[] DEFAULT NULL, retry text DEFAULT 'default',
                                OUT endpoint_id text, OUT secret_id text, OUT secret text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    schedule interval[] := retry_schedule(retry);
BEGIN
    IF schedule IS NULL THEN
        RAISE EXCEPTION 'hookseal: unknown retry preset % (default, flinks)', retry
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO endpoints (app_id, url, scheme, event_types, retry_schedule)
    VALUES (app, url, scheme, event_types, schedule)
    RETURNING id INTO endpoint_id;
    SELECT c.secret_id, c.secret INTO secret_id, secret FROM create_secret(endpoint_id) c;
END
$$;

-- Rotate: a new secret now; the current ones stay valid (and are still
-- signed with) for `grace`, then expire.
CREATE FUNCTION rotate_secret(endpoint text, grace interval DEFAULT '24 hours',
                              OUT secret_id text, OUT secret text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    UPDATE secrets s SET expires_at = clock_timestamp() + grace
    WHERE s.webhook_id = endpoint AND s.revoked_at IS NULL
      AND (s.expires_at IS NULL OR s.expires_at > clock_timestamp() + grace);
    SELECT c.secret_id, c.secret INTO secret_id, secret FROM create_secret(endpoint) c;
END
$$;

-- Revoke a secret at once. The last active secret of an enabled endpoint
-- cannot be revoked (its deliveries could not be signed).
CREATE FUNCTION revoke_secret(secret_id text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    ep text;
BEGIN
    SELECT s.webhook_id INTO ep FROM secrets s WHERE s.id = secret_id AND s.revoked_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF cardinality(_active_secrets(ep)) <= 1
       AND EXISTS (SELECT 1 FROM endpoints e WHERE e.id = ep AND e.enabled) THEN
        RAISE EXCEPTION 'hookseal: % is the last active secret of enabled endpoint %', secret_id, ep
            USING ERRCODE = 'object_in_use', HINT = 'rotate_secret() first, or disable the endpoint';
    END IF;
    UPDATE secrets s SET revoked_at = clock_timestamp() WHERE s.id = secret_id;
    RETURN true;
END
$$;

-- Look a secret up by its hash, without decrypting anything.
CREATE FUNCTION find_secret(hash text)
RETURNS TABLE (secret_id text, webhook_id text, active boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT s.id, s.webhook_id,
           s.revoked_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > clock_timestamp())
    FROM secrets s WHERE s.hash = find_secret.hash
$$;

-- Server-key rotation without downtime: with the new key as
-- hookseal.server_key and the old one in hookseal.old_server_keys, call this
-- until it returns 0; each call re-encrypts up to `batch` rows.
CREATE FUNCTION rewrap_secrets(batch integer DEFAULT 1000) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    WITH todo AS (
        SELECT s.id FROM secrets s WHERE _needs_rewrap(s.secret)
        LIMIT greatest(batch, 0) FOR UPDATE SKIP LOCKED
    ), done AS (
        UPDATE secrets s SET secret = _rewrap(s.secret) FROM todo WHERE s.id = todo.id RETURNING 1
    )
    SELECT count(*)::integer FROM done
$$;

-- Privileges ------------------------------------------------------------------

REVOKE ALL ON SCHEMA hookseal FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA hookseal FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA hookseal FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA hookseal FROM PUBLIC;
REVOKE ALL ON TYPE outbox_status FROM PUBLIC;

GRANT USAGE ON SCHEMA hookseal TO hookseal_writer, hookseal_dispatcher, hookseal_admin;
GRANT USAGE ON TYPE outbox_status TO hookseal_dispatcher, hookseal_admin;

GRANT EXECUTE ON FUNCTION
    webhook_sign(text, text, text, text, timestamptz),
    webhook_sign(text, text, bytea, text, timestamptz),
    webhook_sign(text, text[], text, text, timestamptz),
    webhook_sign_message(text, text, text, text, timestamptz), webhook_body(text, text),
    webhook_verify(text, text[], text, jsonb, integer, timestamptz, text),
    webhook_verify(text, text[], bytea, jsonb, integer, timestamptz, text),
    webhook_verify_reason(text, text[], text, jsonb, integer, timestamptz, text),
    secret_hash(text), new_id(text), event_body(text, text, bigint, jsonb),
    scheme_exists(text), retry_schedule(text)
TO hookseal_writer, hookseal_dispatcher, hookseal_admin;

GRANT EXECUTE ON FUNCTION webhook_send(text, text, jsonb), webhook_send(text, text, jsonb, text)
    TO hookseal_writer, hookseal_admin;
GRANT EXECUTE ON FUNCTION claim(text, integer, interval), ack(bigint, text, integer),
    ack_many(text, bigint[], integer[]), release(text, bigint[]),
    fail(bigint, text, integer, text, interval) TO hookseal_dispatcher;
GRANT EXECUTE ON FUNCTION create_app(text), create_secret(text),
    create_endpoint(text, text, text, text[], text), rotate_secret(text, interval),
    revoke_secret(text), find_secret(text), rewrap_secrets(integer), redrive(bigint)
TO hookseal_admin;
GRANT SELECT ON apps, endpoints, events, outbox TO hookseal_admin;
GRANT UPDATE (enabled, disabled_reason, url, event_types, retry_schedule, retry_jitter)
    ON endpoints TO hookseal_admin;
GRANT SELECT (id, webhook_id, hash, created_at, expires_at, revoked_at) ON secrets TO hookseal_admin;
