-- hookseal: tables, triggers, roles and grants, one script for both
-- flavours. Native: included at the end of the extension's install script,
-- after the Rust functions it calls. Portable: installed after
-- sql/portable/*.sql, which define the same functions in PL/pgSQL on
-- pgcrypto. Where the flavours behave differently this script asks
-- _flavour() ('native' or 'portable'): the native flavour signs in the
-- database (the fan-out and claim()); the portable one stores rows
-- unsigned, and claim() hands the dispatcher the sealed secrets to sign
-- with.
--
-- Security model
--   PUBLIC has nothing: no schema usage, no table, no function.
--   hookseal_writer      may call webhook_send() (and sign/verify helpers).
--   hookseal_dispatcher  may claim(), ack(), fail() outbox rows; it sees bodies
--                        and signed headers, never a secret (portable
--                        flavour: the sealed secrets, which only the
--                        holders of the sealing key open).
--   hookseal_admin       manages apps, endpoints and secrets; reads every table
--                        (the attempt log included) except the encrypted
--                        secrets; replays and redrives.
--   maintain() (retention) is open to the dispatcher and admin roles.
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
EXCEPTION WHEN insufficient_privilege THEN
    -- The portable flavour's installer is a database owner, who may lack
    -- CREATEROLE.
    RAISE EXCEPTION 'hookseal: the roles hookseal_writer, hookseal_dispatcher and hookseal_admin '
                    'do not all exist, and % may not create roles', current_user
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'install as a role with CREATEROLE (the master user on RDS and Aurora, postgres '
                     'on Supabase, the owner on Neon), or have one run CREATE ROLE <name> NOLOGIN for each';
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
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- History (0.2.0): maintain() deletes an event, its delivered outbox rows
    -- and their attempts once the event is older than `retention`; dead
    -- letters stay until redriven or older than both periods.
    retention       interval NOT NULL DEFAULT '30 days' CHECK (retention > '0'),
    dead_retention  interval NOT NULL DEFAULT '30 days' CHECK (dead_retention > '0')
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
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- Flow control (0.2.0). See claim() for how each is applied.
    ordered            boolean NOT NULL DEFAULT false,       -- FIFO: one in flight, in event order
    max_in_flight      integer CHECK (max_in_flight BETWEEN 1 AND 10000), -- all workers together
    rate_limit         real CHECK (rate_limit > 0 AND rate_limit <= 100000), -- deliveries/s, all workers
    failure_threshold  integer NOT NULL DEFAULT 5 CHECK (failure_threshold BETWEEN 1 AND 1000000),
    probe_interval     interval NOT NULL DEFAULT '5 seconds' CHECK (probe_interval > '0'),
    disable_after      interval DEFAULT '5 days' CHECK (disable_after > '0') -- NULL: never
);
CREATE INDEX endpoints_app ON endpoints (app_id) WHERE enabled;

-- The delivery state of each endpoint (one row per endpoint, made by a
-- trigger): its circuit breaker and its rate limiter. Kept apart from the
-- endpoint's settings, which change rarely, while this changes with traffic.
CREATE TABLE endpoint_state (
    endpoint_id           text PRIMARY KEY REFERENCES endpoints (id) ON DELETE CASCADE,
    circuit               text NOT NULL DEFAULT 'closed' CHECK (circuit IN ('closed', 'open')),
    consecutive_failures  integer NOT NULL DEFAULT 0,
    failing_since         timestamptz,   -- first failure of the current run of failures
    opened_at             timestamptz,   -- when the circuit last opened
    next_probe_at         timestamptz,   -- open: when one row may be sent to test the endpoint
    probe_backoff         interval,      -- open: the wait after a failed probe (doubles)
    probe_outbox_id       bigint,        -- open: the row sent as the probe
    rate_tat              timestamptz,   -- rate limit: when the next send slot opens (GCRA)
    -- Failures are counted in the order attempts finish (0.3.0): a failure
    -- that finished before the last success is not counted, and a success
    -- recorded after failures that finished later leaves those counted.
    last_success_at       timestamptz,   -- finish time of the newest delivery
    last_failure_at       timestamptz    -- finish time of the newest counted failure
);

CREATE TABLE secrets (
    id           text PRIMARY KEY DEFAULT new_id('secret'),
    webhook_id   text NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    secret       text NOT NULL,                  -- never plaintext: native AES-256-GCM
                                                 -- (server key), portable sealed (pgp1.)
    hash         text NOT NULL UNIQUE,           -- hex(sha256(secret))
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at   timestamptz,                    -- end of a rotation's grace period
    revoked_at   timestamptz
);
CREATE INDEX secrets_endpoint ON secrets (webhook_id, created_at DESC);

-- The portable flavour's sealing keys (0.3.0): armored OpenPGP public
-- keys; new secrets are sealed to the newest. Their private keys are never
-- here (hookseal keygen --sealing-key gives them to the dispatchers).
-- Empty in the native flavour, whose secrets are under the server key.
CREATE TABLE sealing_keys (
    id          text PRIMARY KEY,               -- OpenPGP key id, as pgp_key_id() writes it
    public_key  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- An event's id is its message id, unique within its app (0.3.0; before, ids
-- were unique across apps, and an id another app had used was silently
-- dropped by webhook_send's idempotency).
CREATE TABLE events (
    id          text NOT NULL DEFAULT new_id('evt'),
    type        text NOT NULL CHECK (type <> ''),
    app_id      text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    created_at  bigint NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
    data        jsonb NOT NULL,
    CONSTRAINT events_pkey PRIMARY KEY (id, app_id),
    -- The W3C trace context of the transaction that sent it (0.3.0):
    -- webhook_send's argument or the hookseal.traceparent setting.
    traceparent text,
    tracestate  text
);
-- Retention walks each app's events oldest first (maintain()); replay() finds
-- an app's events since a time.
CREATE INDEX events_app_created ON events (app_id, created_at);

CREATE TYPE outbox_status AS ENUM ('pending', 'delivering', 'delivered', 'dead');

CREATE TABLE outbox (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id          text NOT NULL,
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
    ordered           boolean NOT NULL DEFAULT false, -- the endpoint's FIFO option, copied (0.2.0)
    app_id            text NOT NULL,                  -- the event's app (0.3.0: ids are per app)
    traceparent       text,                           -- the event's trace context, copied (0.3.0)
    tracestate        text,
    UNIQUE (event_id, endpoint_id),
    CONSTRAINT outbox_event_fkey FOREIGN KEY (event_id, app_id)
        REFERENCES events (id, app_id) ON DELETE CASCADE
);
-- Scheduling (0.2.0). A row is due when next_attempt_at has passed: pending
-- rows at their retry time, delivering rows when their lease runs out (a
-- claim sets next_attempt_at to the lease's end). Every index is per
-- endpoint, so no claim walks another endpoint's backlog. Rows in flight are
-- counted on outbox_endpoint_due too (delivering, next_attempt_at ahead): a
-- separate index measured one more index insert per claimed row for nothing.
CREATE INDEX outbox_endpoint_due ON outbox (endpoint_id, next_attempt_at)
    WHERE status IN ('pending', 'delivering');
CREATE INDEX outbox_fifo ON outbox (endpoint_id, id) WHERE ordered AND status IN ('pending', 'delivering');
-- Dead letters per endpoint (redrive_endpoint(), endpoint_health()); small,
-- and written only when a row dies.
CREATE INDEX outbox_dead ON outbox (endpoint_id, created_at) WHERE status = 'dead';

-- The attempt log (0.2.0): one row per delivery attempt, written by ack_many()
-- and fail() in the recorder's round trips. No foreign key (a key check per
-- attempt, and a lock on the hot outbox row, for nothing: maintain() deletes a
-- row's attempts with the row). Never a secret, never a request header: the
-- message id is the outbox row's event_id.
CREATE TABLE attempts (
    outbox_id      bigint NOT NULL,
    attempt        integer NOT NULL,        -- outbox.attempts when sent (restarts after redrive/replay)
    endpoint_id    text NOT NULL,
    worker         text NOT NULL,
    started_at     timestamptz NOT NULL,    -- the worker's clock: request sent
    finished_at    timestamptz NOT NULL,    -- answer classified (started_at + monotonic duration)
    http_status    integer,                 -- NULL: no answer
    error_class    text NOT NULL CHECK (error_class IN ('ok', 'http', 'timeout', 'connect', 'tls',
                                                        'policy', 'invalid', 'other')),
    error          text,                    -- at most 1,000 characters
    response_type  text,                    -- the answer's Content-Type, at most 200 characters
    response_body  text,                    -- the answer's first 1 KiB (lossy UTF-8)
    resigned       boolean                  -- signed at claim (not as the fan-out signed it); NULL: unknown
);
CREATE INDEX attempts_outbox ON attempts (outbox_id, attempt);
-- Health over a time window: a BRIN index costs next to nothing per insert
-- and rows arrive in time order.
CREATE INDEX attempts_finished ON attempts USING brin (finished_at);
-- Attempts per endpoint, hour and latency bucket (0.3.0): what
-- endpoint_health() and the portal read instead of a day of the attempt log
-- (a day of 10M attempts over 30 days took 3.2 s, bench/portal.sh). A
-- statement trigger on attempts adds one row per (endpoint, hour, bucket)
-- per INSERT statement: rows are only inserted, never updated here, so no
-- recorder waits on another's row lock; maintain() merges each key's rows
-- and deletes the hours past the app's retention. Counts are exact; p50/p99
-- come from the buckets (√2 apart, interpolated).
CREATE TABLE attempt_rollup (
    endpoint_id      text NOT NULL,
    hour             timestamptz NOT NULL,   -- the attempt's finished_at to the hour (UTC)
    bucket           smallint NOT NULL,      -- _latency_bucket(started_at, finished_at)
    attempts         bigint NOT NULL,
    delivered        bigint NOT NULL,
    last_failure_at  timestamptz,            -- the newest failed attempt among them
    last_status      integer,
    last_error       text
);
CREATE INDEX attempt_rollup_endpoint_hour ON attempt_rollup (endpoint_id, hour);
-- BRIN: rows arrive in time order (merged ones at the end, a day old at
-- most), and it costs next to nothing per insert in the recorders' path.
CREATE INDEX attempt_rollup_hour ON attempt_rollup USING brin (hour);
ALTER TABLE attempts SET (autovacuum_vacuum_scale_factor = 0.02);
ALTER TABLE events SET (autovacuum_vacuum_scale_factor = 0.02);
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0.02);

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
-- endpoint's scheme sends (_delivery_body: webhook_body's compact JSON form
-- for x-signature and fincra, the event body as it is otherwise; the
-- portable flavour keeps the event body where it cannot prove the compact
-- form, and its dispatcher's signer sends the form it signs), and that
-- body is what is signed. The secrets lookup repeats
-- _active_secrets' predicate on purpose: calling a SQL function per row here
-- (SECURITY DEFINER or not) measured 0.80x of the unsigned-insert throughput
-- in bench/pg.sh, against 1.0x with the subquery inlined.
-- An endpoint with no active secret (0.3.0) gets its row unsigned
-- (signed_at = -infinity, so a claim signs it) and claim() holds the row
-- until the endpoint has a secret again: one endpoint's missing secret never
-- fails the send, nor another endpoint's delivery.
-- A delivery body larger than hookseal.max_body_bytes (what hookseal's
-- receivers accept by default) is refused before anything is written.
-- Ordered endpoints: writers to one take a transaction lock before their row
-- gets its id, so ids (the FIFO order) follow commit order.
CREATE FUNCTION _fan_out() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    payload text := event_body(NEW.id, NEW.type, NEW.created_at, NEW.data);
    signed_at timestamptz := clock_timestamp();
    -- The portable flavour cannot sign here: every row is stored unsigned
    -- (signed_at = -infinity) and its dispatcher signs at claim.
    in_db boolean := _flavour() = 'native';
BEGIN
    IF octet_length(payload) > _max_body_bytes() THEN
        RAISE EXCEPTION 'hookseal: event % of app % is % bytes as delivered, more than '
                        'hookseal.max_body_bytes (%)',
            NEW.id, NEW.app_id, octet_length(payload), _max_body_bytes()
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'receivers refuse larger bodies by default; send a reference to the '
                         'data instead, or raise hookseal.max_body_bytes and the receivers'' limits';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('hookseal.fifo'), hashtext(e.id))
    FROM endpoints e
    WHERE e.app_id = NEW.app_id AND e.enabled AND e.ordered
      AND (e.event_types IS NULL OR NEW.type = ANY (e.event_types))
    ORDER BY e.id;
    -- Unsigned ('{}', signed_at -infinity: claim() signs it) when the
    -- endpoint has no secret, the portable flavour stores rows unsigned, or
    -- a stored secret does not decrypt (_sign_stored NULL): one endpoint's
    -- broken secret does not fail the event for the app's other endpoints.
    INSERT INTO outbox (event_id, app_id, endpoint_id, body, signed_at, ordered, headers,
                        traceparent, tracestate)
    SELECT NEW.id, NEW.app_id, e.id, m.body,
           CASE WHEN g.headers IS NULL THEN '-infinity' ELSE signed_at END,
           e.ordered,
           coalesce(g.headers, '{}'::jsonb), NEW.traceparent, NEW.tracestate
    FROM endpoints e
    CROSS JOIN LATERAL (SELECT _delivery_body(e.scheme, payload) AS body OFFSET 0) m
    CROSS JOIN LATERAL (SELECT ARRAY(SELECT s.secret FROM secrets s
                                     WHERE s.webhook_id = e.id AND s.revoked_at IS NULL
                                       AND (s.expires_at IS NULL OR s.expires_at > signed_at)
                                     ORDER BY s.created_at DESC) AS secrets) k
    CROSS JOIN LATERAL (SELECT CASE WHEN cardinality(k.secrets) = 0 OR NOT in_db THEN NULL
                                    ELSE _sign_stored(e.scheme, k.secrets, m.body, NEW.id, signed_at)
                               END AS headers OFFSET 0) g
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

-- Every endpoint has its state row; undelivered rows follow its FIFO option.
CREATE FUNCTION _endpoint_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO endpoint_state (endpoint_id) VALUES (NEW.id);
    ELSIF NEW.ordered IS DISTINCT FROM OLD.ordered THEN
        UPDATE outbox o SET ordered = NEW.ordered
        WHERE o.endpoint_id = NEW.id AND o.status IN ('pending', 'delivering');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER endpoints_changed AFTER INSERT OR UPDATE OF ordered ON endpoints
    FOR EACH ROW EXECUTE FUNCTION _endpoint_changed();

-- Writing events ------------------------------------------------------------

-- The app must exist, named in a hookseal error (not a foreign-key
-- violation carrying the whole row).
CREATE FUNCTION _check_app(app text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    IF app IS NULL OR NOT EXISTS (SELECT 1 FROM apps a WHERE a.id = app) THEN
        RAISE EXCEPTION 'hookseal: no app %', coalesce(quote_literal(app), 'NULL')
            USING ERRCODE = 'foreign_key_violation', HINT = 'create_app() returns an app id';
    END IF;
END
$$;

-- The trace context an event keeps: `given` (webhook_send's argument) or
-- the transaction's hookseal.traceparent setting, checked as W3C Trace
-- Context says (version 00's form: 00-<32 hex trace id>-<16 hex parent
-- id>-<2 hex flags>, lower case, ids not all zero), with the
-- hookseal.tracestate setting beside it (at most 512 visible characters).
-- NULLs when neither is set; an invalid one is refused by name.
CREATE FUNCTION _trace_context(given text, OUT traceparent text, OUT tracestate text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    traceparent := nullif(btrim(coalesce(given, current_setting('hookseal.traceparent', true))), '');
    IF traceparent IS NULL THEN
        RETURN;
    END IF;
    IF traceparent !~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$'
       OR left(traceparent, 2) = 'ff'
       OR substr(traceparent, 4, 32) = repeat('0', 32) OR substr(traceparent, 37, 16) = repeat('0', 16) THEN
        RAISE EXCEPTION 'hookseal: traceparent % is not a W3C trace context', quote_literal(left(traceparent, 80))
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'the form is 00-<32 hex digits>-<16 hex digits>-<2 hex digits>, lower case, '
                         'e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    END IF;
    tracestate := nullif(btrim(current_setting('hookseal.tracestate', true)), '');
    IF tracestate IS NOT NULL AND (length(tracestate) > 512 OR tracestate !~ '^[\x20-\x7e]+$') THEN
        RAISE EXCEPTION 'hookseal: tracestate is not a W3C tracestate (at most 512 visible ASCII characters)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

CREATE FUNCTION webhook_send(app text, type text, data jsonb) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    id text;
    t record := _trace_context(NULL);
BEGIN
    PERFORM _check_app(app);
    INSERT INTO events (app_id, type, data, traceparent, tracestate)
    VALUES (app, type, data, t.traceparent, t.tracestate) RETURNING events.id INTO id;
    RETURN id;
END
$$;

-- The same with the caller's event id (a provider's message id, say), for
-- idempotent intake within the app: when the app already has an event with
-- that id, nothing is inserted or fanned out again, and the id is returned
-- all the same. Another app's event with the same id is another event
-- (0.3.0; before, it was silently not stored).
-- Both, with the W3C traceparent of the sending transaction's span (NULL:
-- the hookseal.traceparent setting, which an application sets once per
-- transaction with SET LOCAL); a NULL event_id is a new one. The event
-- keeps the trace context and every delivery continues it (0.3.0).
CREATE FUNCTION webhook_send(app text, type text, data jsonb, event_id text, traceparent text)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    t record := _trace_context(traceparent);
BEGIN
    IF event_id IS NULL THEN
        event_id := new_id('evt');
    END IF;
    PERFORM _message_id(event_id);  -- the core's rule (0.2.0; 0.1.0 took 1-200 of any characters)
    PERFORM _check_app(app);
    INSERT INTO events (id, app_id, type, data, traceparent, tracestate)
    VALUES (event_id, app, type, data, t.traceparent, t.tracestate)
    ON CONFLICT (id, app_id) DO NOTHING;
    RETURN event_id;
END
$$;

CREATE FUNCTION webhook_send(app text, type text, data jsonb, event_id text) RETURNS text
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$ SELECT webhook_send(app, type, data, _message_id(event_id), NULL) $$;

-- Dispatching -----------------------------------------------------------------

-- Claim up to `batch` due rows for `worker` for `lease`, fairly across
-- endpoints, leaving out the endpoints in `skip` (those the worker already
-- holds enough rows of, so their rows in flight are not counted again at
-- every claim: 10 hanging endpoints' 256 rows each cost ~1.3 ms a claim).
-- Each endpoint with a due row gets at most the rows it can take
-- now ("room"), the endpoints this worker holds fewest rows of first, then the
-- most overdue:
--   - per_endpoint (the most rows of one endpoint this worker holds at once,
--     sending or ready to send) minus this worker's rows in flight to it, and
--     max_in_flight minus every worker's rows in flight;
--   - ordered (FIFO) endpoints: only the oldest undelivered row, and only
--     when nothing of the endpoint is in flight;
--   - open circuit: one probe row when next_probe_at has passed;
--   - rate_limit: the send slots of the next second; each row comes with
--     send_delay (seconds) that spaces the slots 1/rate apart;
--   - and no more than an equal share of the batch (batch / endpoints with
--     room, at least 32), so a few backlogged endpoints cannot fill claim
--     after claim while other endpoints' new rows wait (a lone endpoint gets
--     it all). The floor keeps a claim to batch/32 index scans: a share of 2
--     (100 backlogged endpoints, batch 200) drained at 0.71x.
-- "In flight" is a delivering row whose lease has not run out. Endpoint
-- state that a claim changes (rate slots, probes, max_in_flight) is locked
-- first, SKIP LOCKED, so workers never wait for each other and never both
-- spend the same room. A first attempt signed by the fan-out trigger in the
-- last minute is sent as signed; anything else is re-signed now (`resigned`,
-- which the attempt log records). Generic
-- plans: planning the statement anew per call measured about 0.25 ms, a
-- quarter of a small claim (bench/dispatch.sh --compare).
CREATE FUNCTION claim(worker text, batch integer DEFAULT 100, lease interval DEFAULT '60 seconds',
                      per_endpoint integer DEFAULT 32, skip text[] DEFAULT NULL)
RETURNS TABLE (outbox_id bigint, event_id text, endpoint_id text, url text, body text,
               headers jsonb, attempt integer, send_delay double precision, resigned boolean,
               scheme text, sealed text[], traceparent text, tracestate text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    now_ timestamptz := clock_timestamp();
    active text[];
    held text[];
BEGIN
    IF worker IS NULL OR worker = '' THEN
        RAISE EXCEPTION 'hookseal: claim() needs a worker name (the lease owner)'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF lease IS NULL OR lease <= '0' THEN
        RAISE EXCEPTION 'hookseal: claim() needs a lease longer than 0 (got %)', coalesce(lease::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'the lease is how long a claimed row stays with this worker, e.g. ''60 seconds''';
    END IF;
    IF batch IS NULL OR batch < 1 OR per_endpoint IS NULL OR per_endpoint < 1 THEN
        RETURN;
    END IF;
    -- The endpoints with undelivered rows: a skip scan over outbox_endpoint_due,
    -- one index descent per such endpoint, so idle endpoints cost nothing
    -- (probing every endpoint measured 3.5 ms a claim with 1,000 of them).
    active := ARRAY(
        WITH RECURSIVE a AS (
            (SELECT o.endpoint_id FROM outbox o
             WHERE o.status IN ('pending', 'delivering')
             ORDER BY o.endpoint_id LIMIT 1)
            UNION ALL
            SELECT (SELECT o.endpoint_id FROM outbox o
                    WHERE o.status IN ('pending', 'delivering') AND o.endpoint_id > a.endpoint_id
                    ORDER BY o.endpoint_id LIMIT 1)
            FROM a WHERE a.endpoint_id IS NOT NULL)
        SELECT a.endpoint_id FROM a
        WHERE a.endpoint_id IS NOT NULL AND NOT a.endpoint_id = ANY (coalesce(skip, '{}')));
    held := ARRAY(
        SELECT s.endpoint_id
        FROM endpoint_state s JOIN endpoints e ON e.id = s.endpoint_id
        WHERE e.id = ANY (active) AND e.enabled
          AND (e.rate_limit IS NOT NULL OR e.max_in_flight IS NOT NULL OR s.circuit = 'open')
          AND (s.circuit = 'closed' OR s.next_probe_at <= now_)
          -- A lateral LIMIT 1, not EXISTS: EXISTS was planned as a hashed
          -- semi-join over every due row (1.35 ms a claim beside a 5,000-row
          -- backlog, bench/fairness.sh); this is one index probe per endpoint.
          AND (SELECT true FROM outbox o
               WHERE o.endpoint_id = e.id AND o.status IN ('pending', 'delivering')
                 AND o.next_attempt_at <= now_
               LIMIT 1)
        FOR UPDATE OF s SKIP LOCKED);
    RETURN QUERY
    WITH ready AS MATERIALIZED (
        SELECT e.id, e.ordered, e.rate_limit, d.due_at, f.mine,
               extract(epoch FROM greatest(now_, coalesce(s.rate_tat, now_)) - now_) AS rate_wait,
               least(coalesce(e.max_in_flight, 1000000) - f.total,
                     per_endpoint - f.mine,
                     CASE WHEN e.ordered OR s.circuit = 'open' THEN 1 - f.total ELSE 1000000 END,
                     CASE WHEN e.rate_limit IS NULL THEN 1000000
                          ELSE ceil((1 - extract(epoch FROM greatest(now_, coalesce(s.rate_tat, now_)) - now_))
                                    * e.rate_limit)::integer END) AS room
        FROM endpoints e
        JOIN endpoint_state s ON s.endpoint_id = e.id
        CROSS JOIN LATERAL (
            SELECT o.next_attempt_at AS due_at FROM outbox o
            WHERE o.endpoint_id = e.id AND o.status IN ('pending', 'delivering')
              AND o.next_attempt_at <= now_
            ORDER BY o.next_attempt_at LIMIT 1) d
        CROSS JOIN LATERAL (
            SELECT count(*)::integer AS total,
                   count(*) FILTER (WHERE o.lease_owner = worker)::integer AS mine
            FROM outbox o
            WHERE o.endpoint_id = e.id AND o.status = 'delivering' AND o.next_attempt_at > now_) f
        WHERE e.id = ANY (active) AND e.enabled
          AND ((e.rate_limit IS NULL AND e.max_in_flight IS NULL AND s.circuit = 'closed')
               OR e.id = ANY (held))
          -- No active secret (0.3.0): its rows are held, unsigned and
          -- unclaimed, until it has one (endpoint_status.held_reason says so).
          AND (SELECT true FROM secrets k
               WHERE k.webhook_id = e.id AND k.revoked_at IS NULL
                 AND (k.expires_at IS NULL OR k.expires_at > now_)
               LIMIT 1)
    ), picked AS (
        SELECT p.id, r.id AS ep, r.rate_limit, r.rate_wait
        FROM (SELECT *, count(*) OVER () AS ready_endpoints FROM ready
              WHERE ready.room > 0 ORDER BY ready.mine, ready.due_at) r
        CROSS JOIN LATERAL (
            SELECT u.id FROM (
                SELECT o.id FROM outbox o
                WHERE NOT r.ordered AND o.endpoint_id = r.id
                  AND o.status IN ('pending', 'delivering') AND o.next_attempt_at <= now_
                ORDER BY o.next_attempt_at
                LIMIT least(r.room, greatest(32, ceil(batch::numeric / r.ready_endpoints)::integer))
                FOR UPDATE SKIP LOCKED) u
            UNION ALL
            SELECT h.id FROM (
                SELECT o.id FROM outbox o
                WHERE r.ordered
                  AND o.id = (SELECT f.id FROM outbox f
                              WHERE f.endpoint_id = r.id AND f.ordered
                                AND f.status IN ('pending', 'delivering')
                              ORDER BY f.id LIMIT 1)
                  AND o.status IN ('pending', 'delivering') AND o.next_attempt_at <= now_
                FOR UPDATE SKIP LOCKED) h
        ) p
        LIMIT batch
    ), numbered AS (
        SELECT p.id, p.ep,
               CASE WHEN p.rate_limit IS NULL THEN 0
                    ELSE p.rate_wait + (row_number() OVER (PARTITION BY p.ep ORDER BY p.id) - 1)
                                       / p.rate_limit END AS delay
        FROM picked p
    ), state AS (
        UPDATE endpoint_state s
        SET rate_tat = CASE WHEN e.rate_limit IS NULL THEN s.rate_tat
                            ELSE greatest(now_, coalesce(s.rate_tat, now_))
                                 + make_interval(secs => c.cnt / e.rate_limit) END,
            next_probe_at = CASE WHEN s.circuit = 'open' THEN now_ + lease ELSE s.next_probe_at END,
            probe_outbox_id = CASE WHEN s.circuit = 'open' THEN c.first ELSE s.probe_outbox_id END
        FROM (SELECT n.ep, count(*) AS cnt, min(n.id) AS first FROM numbered n GROUP BY n.ep) c,
             endpoints e
        WHERE s.endpoint_id = c.ep AND e.id = c.ep
          AND (e.rate_limit IS NOT NULL OR s.circuit = 'open')
    ), signed AS (
        -- This attempt's headers: kept when fresh, none in the portable
        -- flavour (the worker signs), else signed now. NULL when a stored
        -- secret does not decrypt: returned as NULL, the worker fails that
        -- attempt (named, retried) and the claim goes on for every other row.
        SELECT n.id, n.delay,
               CASE WHEN o.attempts = 0 AND o.signed_at > now_ - interval '60 seconds' THEN o.headers
                    WHEN _flavour() = 'portable' THEN '{}'
                    ELSE _sign_stored(e.scheme, _active_secrets(o.endpoint_id), o.body,
                                      o.event_id, now_) END AS headers
        FROM numbered n JOIN outbox o ON o.id = n.id JOIN endpoints e ON e.id = o.endpoint_id
    )
    UPDATE outbox o
    SET status = 'delivering',
        lease_owner = worker,
        lease_expires_at = now_ + lease,
        next_attempt_at = now_ + lease,
        attempts = o.attempts + 1,
        signed_at = CASE WHEN g.headers IS NULL THEN '-infinity'
                         WHEN o.attempts = 0 AND o.signed_at > now_ - interval '60 seconds'
                         THEN o.signed_at ELSE now_ END,
        headers = coalesce(g.headers, '{}')
    FROM signed g, endpoints e
    WHERE o.id = g.id AND e.id = o.endpoint_id
    RETURNING o.id, o.event_id, o.endpoint_id, e.url, o.body, g.headers, o.attempts,
              g.delay::double precision, o.signed_at = now_, e.scheme,
              -- Portable: the sealed secrets that sign now, newest first;
              -- the dispatcher opens them and signs this attempt.
              CASE WHEN _flavour() = 'portable' THEN _active_secrets(o.endpoint_id) END,
              o.traceparent, o.tracestate;
END
$$;

-- A delivery ends the endpoint's run of failures and closes its circuit
-- (enable_endpoint(): `finished` NULL, unconditionally). Counted in the
-- order attempts finished (0.3.0): a delivery that finished before failures
-- already counted leaves those counted (recounted from the attempt log,
-- which their fail() calls wrote), so a recorder that sends its batched
-- acks after single fails cannot open the circuit of an endpoint that
-- never failed failure_threshold times in a row. For an endpoint without
-- counted failures, the usual case, only last_success_at moves.
-- PL/pgSQL, not SQL: its statements are planned once per session, not at
-- every ack; as a SQL function this cost 0.67x of the ordered drain (one
-- ack per delivery), as PL/pgSQL it is within the noise (BENCHMARKS.md).
CREATE FUNCTION _endpoints_healthy(endpoint_ids text[], finished timestamptz[]) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    UPDATE endpoint_state s
    SET last_success_at = d.t
    FROM (SELECT u.ep, max(u.t) AS t
          FROM unnest(endpoint_ids, finished) AS u(ep, t)
          GROUP BY u.ep) d
    WHERE s.endpoint_id = d.ep AND s.consecutive_failures = 0 AND s.circuit = 'closed'
      AND (s.last_success_at IS NULL OR s.last_success_at < d.t);
    IF NOT EXISTS (SELECT 1 FROM endpoint_state s
                   WHERE s.endpoint_id = ANY (endpoint_ids)
                     AND (s.consecutive_failures > 0 OR s.circuit <> 'closed')) THEN
        RETURN;
    END IF;
    WITH d AS (
        SELECT u.ep, max(u.t) AS t
        FROM unnest(endpoint_ids, finished) AS u(ep, t)
        GROUP BY u.ep
    ), later AS (
        -- Failures counted that finished after this delivery: rare (answers
        -- recorded out of order), one BRIN-bounded look at the log then.
        -- (A CASE, not a lateral join: the count must not run at all in the
        -- usual case; a lateral count per endpoint and ack batch measured
        -- 0.65x of the drain rate with 100 endpoints.)
        SELECT d.ep, d.t,
               CASE WHEN d.t IS NULL OR s.last_failure_at IS NULL OR s.last_failure_at <= d.t THEN 0
                    ELSE (SELECT count(*)::integer FROM attempts a
                          WHERE a.endpoint_id = d.ep
                            AND a.finished_at > greatest(d.t, s.last_success_at)
                            AND a.error_class <> 'ok')
               END AS failures
        FROM d JOIN endpoint_state s ON s.endpoint_id = d.ep
        WHERE s.consecutive_failures > 0 OR s.circuit <> 'closed'
    )
    UPDATE endpoint_state s
    SET last_success_at = CASE WHEN l.t IS NULL THEN s.last_success_at
                               ELSE greatest(s.last_success_at, l.t) END,
        consecutive_failures = l.failures,
        failing_since = CASE WHEN l.failures = 0 THEN NULL ELSE s.failing_since END,
        last_failure_at = CASE WHEN l.failures = 0 THEN NULL ELSE s.last_failure_at END,
        circuit = CASE WHEN l.failures >= e.failure_threshold THEN s.circuit ELSE 'closed' END,
        next_probe_at = CASE WHEN l.failures >= e.failure_threshold THEN s.next_probe_at END,
        probe_backoff = CASE WHEN l.failures >= e.failure_threshold THEN s.probe_backoff END,
        probe_outbox_id = CASE WHEN l.failures >= e.failure_threshold THEN s.probe_outbox_id END
    FROM later l, endpoints e
    WHERE s.endpoint_id = l.ep AND e.id = l.ep;
END
$$;

-- Record many deliveries in one statement (the dispatcher's batched ack),
-- each with its attempt log entry (attempts): its number, when it was sent
-- and answered by the worker's clock, whether it was re-signed, and the
-- answer's content type and first 1 KiB. Returns the ids that were recorded;
-- an id missing from the answer had lost its lease (another worker took it
-- over). Its attempt is logged all the same: it was sent.
CREATE FUNCTION ack_many(worker text, outbox_ids bigint[], http_statuses integer[],
                         attempt_numbers integer[], started timestamptz[], finished timestamptz[],
                         resigned boolean[], response_types text[], response_bodies text[])
RETURNS SETOF bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    WITH a AS MATERIALIZED (
        SELECT * FROM unnest(outbox_ids, http_statuses, attempt_numbers, started, finished, resigned,
                             response_types, response_bodies)
            AS a(id, http_status, attempt, started_at, finished_at, resigned, response_type,
                 response_body)
    ), held AS MATERIALIZED (
        SELECT o.id, o.endpoint_id, o.attempts FROM outbox o JOIN a ON a.id = o.id
    ), done AS (
        UPDATE outbox o
        SET status = 'delivered', delivered_at = clock_timestamp(), last_status = a.http_status,
            last_error = NULL, lease_owner = NULL, lease_expires_at = NULL
        FROM a
        WHERE o.id = a.id AND o.lease_owner = worker AND o.status = 'delivering'
        RETURNING o.id, o.endpoint_id
    ), healed AS (
        SELECT _endpoints_healthy(array_agg(done.endpoint_id ORDER BY done.endpoint_id),
                                  array_agg(coalesce(a.finished_at, a.started_at, clock_timestamp())
                                            ORDER BY done.endpoint_id))
        FROM done JOIN a ON a.id = done.id
    ), logged AS (
        INSERT INTO attempts (outbox_id, attempt, endpoint_id, worker, started_at, finished_at,
                              http_status, error_class, response_type, response_body, resigned)
        SELECT a.id, coalesce(a.attempt, r.attempts), r.endpoint_id, worker,
               coalesce(a.started_at, clock_timestamp()),
               coalesce(a.finished_at, a.started_at, clock_timestamp()), a.http_status, 'ok',
               left(a.response_type, 200), left(a.response_body, 1024), a.resigned
        FROM a JOIN held r ON r.id = a.id
    )
    SELECT id FROM done WHERE EXISTS (SELECT 1 FROM healed)
$$;

-- The same without log details (0.1.0's signature): the attempt is logged
-- with the database's clock.
CREATE FUNCTION ack_many(worker text, outbox_ids bigint[], http_statuses integer[])
RETURNS SETOF bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT ack_many(worker, outbox_ids, http_statuses, NULL::integer[], NULL::timestamptz[],
                    NULL::timestamptz[], NULL::boolean[], NULL::text[], NULL::text[])
$$;

-- Record a delivery. False when `worker` no longer holds the lease.
CREATE FUNCTION ack(outbox_id bigint, worker text, http_status integer) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM ack_many(worker, ARRAY[outbox_id], ARRAY[http_status]))
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

-- Record a failed attempt with its log entry (see ack_many; error_class is
-- one of http, timeout, connect, tls, policy, other, and anything else is
-- logged as other), and schedule the next one on the endpoint's
-- policy (+-jitter; never sooner than retry_after), dead-letter after the
-- last, disable the endpoint on 410 Gone. Every failure also counts against
-- the endpoint: failure_threshold failures in a row open its circuit (its
-- rows wait, unattempted, while one probe at a time tests it, first after
-- probe_interval, then twice as long after each failed probe, up to 10
-- minutes or probe_interval if longer); failing for disable_after disables it.
-- Returns the row's new status, or NULL when `worker` no longer holds the
-- lease (the attempt is logged all the same).
CREATE FUNCTION fail(outbox_id bigint, worker text, http_status integer, error text,
                     retry_after interval, error_class text, attempt integer,
                     started_at timestamptz, finished_at timestamptz, resigned boolean,
                     response_type text, response_body text)
RETURNS outbox_status
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    now_ timestamptz := clock_timestamp();
    row outbox;
    ep endpoints;
    delay interval;
    next_status outbox_status;
BEGIN
    IF http_status NOT BETWEEN 100 AND 599 THEN
        RAISE EXCEPTION 'hookseal: http_status % is not an HTTP status (100-599, or NULL for no answer)',
            http_status USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO row FROM outbox o WHERE o.id = outbox_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO attempts (outbox_id, attempt, endpoint_id, worker, started_at, finished_at,
                          http_status, error_class, error, response_type, response_body, resigned)
    VALUES (outbox_id, coalesce(attempt, row.attempts), row.endpoint_id, worker,
            coalesce(started_at, now_), coalesce(finished_at, started_at, now_), http_status,
            CASE WHEN error_class IN ('http', 'timeout', 'connect', 'tls', 'policy', 'invalid')
                 THEN error_class ELSE 'other' END,
            left(error, 1000), left(response_type, 200), left(response_body, 1024), resigned);
    IF row.lease_owner IS DISTINCT FROM worker OR row.status <> 'delivering' THEN
        RETURN NULL;
    END IF;
    SELECT * INTO ep FROM endpoints WHERE id = row.endpoint_id;
    IF http_status = 410 THEN
        UPDATE endpoints SET enabled = false, disabled_reason = '410 Gone from the receiver'
        WHERE id = ep.id;
        next_status := 'dead';
    ELSIF error_class IN ('policy', 'invalid') THEN
        -- Permanent: the same URL will be refused again. Dead-letter the
        -- row and stop the endpoint (its other rows wait, not lost) until
        -- someone fixes the URL or the allow-list and re-enables it.
        UPDATE endpoints
        SET enabled = false,
            disabled_reason = format('destination refused (%s): %s; fix the URL with '
                                     'hookseal.alter_endpoint(), then hookseal.enable_endpoint()',
                                     error_class, left(error, 200))
        WHERE id = ep.id;
        error := format('permanent (%s): %s', error_class, error);
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
        next_attempt_at = CASE WHEN next_status = 'pending' THEN now_ + delay
                               ELSE o.next_attempt_at END,
        last_status = http_status,
        last_error = left(error, 1000),
        lease_owner = NULL,
        lease_expires_at = NULL
    WHERE o.id = outbox_id;
    PERFORM _endpoint_failed(ep, outbox_id, coalesce(finished_at, started_at, now_));
    RETURN next_status;
END
$$;

-- The same without log details (0.1.0's signature): classed http when the
-- receiver answered, other otherwise, timed by the database's clock.
CREATE FUNCTION fail(outbox_id bigint, worker text, http_status integer, error text,
                     retry_after interval DEFAULT NULL)
RETURNS outbox_status
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT fail(outbox_id, worker, http_status, error, retry_after,
                CASE WHEN http_status IS NULL THEN 'other' ELSE 'http' END,
                NULL, NULL, NULL, NULL, NULL, NULL)
$$;

-- The circuit breaker's side of a failed attempt (see fail()) that finished
-- at `finished`. A failure that finished before the endpoint's last
-- delivery is not counted (that delivery ended the run it belonged to).
CREATE FUNCTION _endpoint_failed(ep endpoints, outbox_id bigint, finished timestamptz) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    st endpoint_state;
    now_ timestamptz := clock_timestamp();
BEGIN
    SELECT * INTO st FROM endpoint_state s WHERE s.endpoint_id = ep.id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF st.last_success_at IS NOT NULL AND finished <= st.last_success_at
       AND NOT (st.circuit = 'open' AND st.probe_outbox_id = outbox_id) THEN
        RETURN;
    END IF;
    st.consecutive_failures := st.consecutive_failures + 1;
    st.failing_since := coalesce(st.failing_since, now_);  -- the database's clock, as disable_after
    st.last_failure_at := greatest(st.last_failure_at, finished);
    IF st.circuit = 'closed' AND st.consecutive_failures >= ep.failure_threshold THEN
        st.circuit := 'open';
        st.opened_at := now_;
        st.probe_backoff := ep.probe_interval;
        st.next_probe_at := now_ + ep.probe_interval;
        st.probe_outbox_id := NULL;
    ELSIF st.circuit = 'open' AND st.probe_outbox_id = outbox_id THEN
        st.probe_backoff := least(st.probe_backoff * 2, greatest(ep.probe_interval, '10 minutes'));
        st.next_probe_at := now_ + st.probe_backoff;
        st.probe_outbox_id := NULL;
    END IF;
    UPDATE endpoint_state s
    SET circuit = st.circuit, consecutive_failures = st.consecutive_failures,
        failing_since = st.failing_since, opened_at = st.opened_at,
        next_probe_at = st.next_probe_at, probe_backoff = st.probe_backoff,
        probe_outbox_id = st.probe_outbox_id, last_failure_at = st.last_failure_at
    WHERE s.endpoint_id = ep.id;
    IF ep.enabled AND ep.disable_after IS NOT NULL AND st.failing_since <= now_ - ep.disable_after THEN
        UPDATE endpoints e
        SET enabled = false,
            disabled_reason = format('failing since %s (%s failed attempts in a row); '
                                     're-enable with hookseal.enable_endpoint()',
                                     st.failing_since, st.consecutive_failures)
        WHERE e.id = ep.id;
    END IF;
END
$$;

-- events.created_at is milliseconds since the epoch; +-infinity clamp.
CREATE FUNCTION _epoch_ms(t timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    SELECT CASE WHEN t = 'infinity' THEN 9223372036854775807
                WHEN t = '-infinity' THEN -9223372036854775808
                ELSE (extract(epoch FROM t) * 1000)::bigint END
$$;

-- Put rows back in the queue as new: attempts counted from 1 again, due
-- now, re-signed at their claim (signed_at = -infinity: no kept signature;
-- same message ids), dispatchers woken.
-- Only rows in `from_status` move. Each row's event is locked first (FOR KEY
-- SHARE): maintain() deletes an event only when it could lock it (FOR UPDATE
-- SKIP LOCKED), so it can never delete a row being put back. Returns how many
-- rows were requeued.
CREATE FUNCTION _requeue(outbox_ids bigint[], from_status outbox_status) RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    WITH ev AS (
        SELECT e.id, e.app_id FROM events e
        WHERE (e.id, e.app_id) IN (SELECT o.event_id, o.app_id FROM outbox o
                                   WHERE o.id = ANY (outbox_ids))
        FOR KEY SHARE
    ), r AS (
        UPDATE outbox o
        SET status = 'pending', attempts = 0, next_attempt_at = clock_timestamp(),
            last_error = NULL, delivered_at = NULL, lease_owner = NULL, lease_expires_at = NULL,
            signed_at = '-infinity'
        WHERE o.id = ANY (outbox_ids) AND o.status = from_status
          AND (o.event_id, o.app_id) IN (SELECT ev.id, ev.app_id FROM ev)
        RETURNING 1
    )
    SELECT count(*)::integer INTO n FROM r;
    IF n > 0 THEN
        PERFORM pg_notify('hookseal_outbox', 'requeue');
    END IF;
    RETURN n;
END
$$;

-- Put a dead-lettered row back in the queue. True when a row was re-driven.
CREATE FUNCTION redrive(outbox_id bigint) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT _requeue(ARRAY[outbox_id], 'dead') = 1
$$;

-- Put every dead letter of an endpoint written since `since` back in the
-- queue. Returns how many.
CREATE FUNCTION redrive_endpoint(endpoint text, since timestamptz DEFAULT '-infinity')
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT _requeue(ARRAY(SELECT o.id FROM outbox o
                          WHERE o.endpoint_id = endpoint AND o.status = 'dead'
                            AND o.created_at >= since),
                    'dead')
$$;

-- Send an app's delivered events again (Svix's "recover"): every delivered
-- row of an enabled endpoint (or only `endpoint`'s) whose event was written
-- in [since, until), re-signed at its claim, under the same message ids.
-- Rows already gone by retention cannot be replayed. Returns how many.
-- A range that ends before it starts, or starts in the future, is refused
-- (0.3.0; it used to replay nothing and say 0).
CREATE FUNCTION replay(app text, since timestamptz, until timestamptz DEFAULT 'infinity',
                       endpoint text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    PERFORM _check_app(app);
    IF since IS NULL OR until IS NULL OR since >= until THEN
        RAISE EXCEPTION 'hookseal: replay() needs since < until (got % .. %)',
            coalesce(since::text, 'NULL'), coalesce(until::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF since > clock_timestamp() THEN
        RAISE EXCEPTION 'hookseal: replay() since % is in the future: no event was written then', since
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN _requeue(ARRAY(
        SELECT o.id
        FROM events e
        JOIN outbox o ON o.event_id = e.id AND o.app_id = e.app_id
        JOIN endpoints ep ON ep.id = o.endpoint_id
        WHERE e.app_id = app
          AND e.created_at >= _epoch_ms(since) AND e.created_at < _epoch_ms(until)
          AND o.status = 'delivered' AND ep.enabled
          AND (endpoint IS NULL OR o.endpoint_id = endpoint)), 'delivered');
END
$$;

-- Retention ------------------------------------------------------------------

-- Delete what each app no longer keeps: events older than the app's
-- `retention` whose outbox rows are all delivered (or dead and older than
-- `dead_retention` too), with those rows and their attempts. Oldest first,
-- `batch` events per batch (three index-driven deletes), at most `max_events` per call, locking only
-- the rows it deletes (SKIP LOCKED: rows being replayed or redriven are
-- left for the next call); no table rewrite, the freed space is reused after
-- autovacuum. One call at a time (an advisory lock; a second caller returns
-- at once). Returns {"events","outbox","attempts","more","ms"}: call again
-- while "more" is true. A scheduler (pg_cron, or `hookseal dispatch
-- --maintain-every`) calls it every minute or so.
CREATE FUNCTION maintain(max_events integer DEFAULT 100000, batch integer DEFAULT 5000)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    started timestamptz := clock_timestamp();
    app apps;
    cutoff bigint;
    dead_cutoff timestamptz;
    want integer;
    n_events bigint := 0;
    n_outbox bigint := 0;
    n_attempts bigint := 0;
    e integer;
    o integer;
    t integer;
    more boolean := false;
    doomed text[];
    rows_gone bigint[];
BEGIN
    IF max_events IS NULL OR max_events < 1 OR batch IS NULL OR batch < 1 THEN
        RAISE EXCEPTION 'hookseal: maintain() needs max_events >= 1 and batch >= 1'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtext('hookseal.maintain')) THEN
        RETURN jsonb_build_object('skipped', 'another maintain() is running');
    END IF;
    FOR app IN SELECT * FROM apps ORDER BY id LOOP
        cutoff := _epoch_ms(started - app.retention);
        dead_cutoff := started - app.dead_retention;
        LOOP
            want := least(batch, max_events - n_events);
            IF want <= 0 THEN
                more := true;
                EXIT;
            END IF;
            -- Arrays and = ANY, not joins: each step is an index scan over
            -- exactly the doomed rows (joins were planned as hash joins over
            -- whole tables: 0.4 s a batch beside 300,000 kept events).
            doomed := ARRAY(
                SELECT v.id FROM events v
                WHERE v.app_id = app.id AND v.created_at < cutoff
                  -- A row not finished keeps its event; one index probe per event.
                  AND (SELECT true FROM outbox x
                       WHERE x.event_id = v.id AND x.app_id = v.app_id
                         AND NOT (x.status = 'delivered'
                                  OR (x.status = 'dead' AND x.created_at < dead_cutoff))
                       LIMIT 1) IS NULL
                ORDER BY v.created_at
                LIMIT want
                FOR UPDATE SKIP LOCKED);
            EXIT WHEN cardinality(doomed) = 0;
            WITH gone AS (
                DELETE FROM outbox x WHERE x.event_id = ANY (doomed) AND x.app_id = app.id
                RETURNING x.id
            )
            SELECT coalesce(array_agg(gone.id), '{}') INTO rows_gone FROM gone;
            DELETE FROM attempts y WHERE y.outbox_id = ANY (rows_gone);
            GET DIAGNOSTICS t = ROW_COUNT;
            DELETE FROM events v WHERE v.id = ANY (doomed) AND v.app_id = app.id;
            GET DIAGNOSTICS e = ROW_COUNT;
            o := cardinality(rows_gone);
            n_events := n_events + e;
            n_outbox := n_outbox + o;
            n_attempts := n_attempts + t;
            EXIT WHEN e < want;
        END LOOP;
        EXIT WHEN more;
    END LOOP;
    PERFORM _compact_rollup();
    RETURN jsonb_build_object('events', n_events, 'outbox', n_outbox, 'attempts', n_attempts,
                              'more', more,
                              'ms', round(extract(epoch FROM clock_timestamp() - started) * 1000));
END
$$;

-- History and health ---------------------------------------------------------

-- One event's whole delivery story, for "why didn't event X arrive?": one
-- line per attempt of each of its outbox rows (a row not attempted yet has
-- one line with no attempt), with the row's status and next attempt. An
-- event that matched no endpoint has one line with no endpoint. Event ids
-- are per app (0.3.0): name
-- the app when two apps used the same id.
CREATE FUNCTION event_attempts(event text, app text DEFAULT NULL)
RETURNS TABLE (event_id text, type text, endpoint_id text, url text, status outbox_status,
               next_attempt_at timestamptz, attempt integer, worker text,
               started_at timestamptz, duration_ms double precision, http_status integer,
               error_class text, error text, response_type text, response_body text,
               resigned boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    apps_ text;
BEGIN
    IF app IS NULL THEN
        SELECT string_agg(v.app_id, ', ' ORDER BY v.app_id) INTO apps_
        FROM events v WHERE v.id = event HAVING count(*) > 1;
        IF apps_ IS NOT NULL THEN
            RAISE EXCEPTION 'hookseal: event % exists in apps %', event, apps_
                USING ERRCODE = 'ambiguous_parameter',
                      HINT = 'name the app: event_attempts(event, app)';
        END IF;
    END IF;
    RETURN QUERY
    SELECT v.id, v.type, o.endpoint_id, ep.url, o.status,
           CASE WHEN o.status = 'pending' THEN o.next_attempt_at END,
           t.attempt, t.worker, t.started_at,
           round(extract(epoch FROM t.finished_at - t.started_at) * 1000, 3)::double precision,
           t.http_status, t.error_class, t.error, t.response_type, t.response_body, t.resigned
    FROM events v
    LEFT JOIN outbox o ON o.event_id = v.id AND o.app_id = v.app_id
    LEFT JOIN endpoints ep ON ep.id = o.endpoint_id
    LEFT JOIN attempts t ON t.outbox_id = o.id
    WHERE v.id = event AND (app IS NULL OR v.app_id = app)
    ORDER BY o.endpoint_id, t.started_at, t.attempt;
END
$$;

-- The attempt rollup (0.3.0) --------------------------------------------------

-- The small helpers below are one expression each with no SET clause, so
-- that PostgreSQL inlines them into the rollup trigger's and
-- endpoint_health()'s queries (a FROM or a SET prevents it; not inlined,
-- the trigger took 1.80 ms per 200 attempts instead of 1.12). They are the
-- owner's only and run under their callers' pinned search_path.

-- A duration's latency bucket: 0 below 1 ms, then b covers
-- [2^((b-1)/2), 2^(b/2)) ms, up to 40 (12 minutes and more).
CREATE FUNCTION _latency_bucket(started timestamptz, finished timestamptz) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- One expression, no FROM: PostgreSQL inlines only that (a FROM made the
    -- rollup trigger 0.75 ms slower per 200 attempts).
    SELECT CASE WHEN date_part('epoch', finished - started) < 0.001
                  OR date_part('epoch', finished - started) IS NULL THEN 0::smallint
                ELSE least(40, 1 + floor(2 * ln(date_part('epoch', finished - started) * 1000)
                                             / ln(2)))::smallint END
$$;

-- A point `frac` (0..1) of the way through a bucket, in ms (geometric).
CREATE FUNCTION _bucket_ms(bucket smallint, frac double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN bucket = 0 THEN greatest(0, least(1, frac))
                ELSE power(2, (bucket - 1 + greatest(0, least(1, frac))) / 2.0) END
$$;

-- A time to its hour (UTC), the rollup's key.
CREATE FUNCTION _hour(t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT date_bin('1 hour', t, timestamptz '2000-01-01 00:00+00')
$$;

-- The first hour boundary at or after `t`: where the rollup takes over
-- from the log in a window starting at `t`.
CREATE FUNCTION _first_hour(t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN _hour(t) = t THEN t ELSE _hour(t) + interval '1 hour' END
$$;

CREATE FUNCTION _roll_up_attempts() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    INSERT INTO attempt_rollup (endpoint_id, hour, bucket, attempts, delivered, last_failure_at,
                                last_status, last_error)
    SELECT n.endpoint_id, _hour(n.finished_at), _latency_bucket(n.started_at, n.finished_at),
           count(*), count(*) FILTER (WHERE n.error_class = 'ok'),
           max(n.finished_at) FILTER (WHERE n.error_class <> 'ok'),
           (array_agg(n.http_status ORDER BY n.finished_at DESC) FILTER (WHERE n.error_class <> 'ok'))[1],
           (array_agg(coalesce(n.error, n.error_class) ORDER BY n.finished_at DESC)
                FILTER (WHERE n.error_class <> 'ok'))[1]
    FROM new_attempts n
    GROUP BY 1, 2, 3;
    RETURN NULL;
END
$$;

CREATE TRIGGER attempts_roll_up AFTER INSERT ON attempts
    REFERENCING NEW TABLE AS new_attempts
    FOR EACH STATEMENT EXECUTE FUNCTION _roll_up_attempts();

-- maintain()'s part: merge each (endpoint, hour, bucket) of the last day
-- into one row, and delete the hours older than the endpoint's app keeps
-- (or whose endpoint is gone). Returns the rows merged away.
CREATE FUNCTION _compact_rollup() RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    merged bigint;
BEGIN
    WITH keys AS (
        SELECT r.endpoint_id, r.hour, r.bucket FROM attempt_rollup r
        WHERE r.hour >= now() - interval '1 day'
        GROUP BY 1, 2, 3 HAVING count(*) > 1
    ), gone AS (
        DELETE FROM attempt_rollup r USING keys k
        WHERE r.hour >= now() - interval '1 day'
          AND (r.endpoint_id, r.hour, r.bucket) = (k.endpoint_id, k.hour, k.bucket)
        RETURNING r.*
    ), kept AS (
        INSERT INTO attempt_rollup (endpoint_id, hour, bucket, attempts, delivered, last_failure_at,
                                    last_status, last_error)
        SELECT g.endpoint_id, g.hour, g.bucket, sum(g.attempts), sum(g.delivered), max(g.last_failure_at),
               (array_agg(g.last_status ORDER BY g.last_failure_at DESC NULLS LAST))[1],
               (array_agg(g.last_error ORDER BY g.last_failure_at DESC NULLS LAST))[1]
        FROM gone g GROUP BY 1, 2, 3
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone) - (SELECT count(*) FROM kept) INTO merged;
    DELETE FROM attempt_rollup r
    WHERE r.hour < now() - (SELECT coalesce(min(a.retention), interval '0') FROM apps a)
      AND NOT EXISTS (SELECT 1 FROM endpoints e JOIN apps a ON a.id = e.app_id
                      WHERE e.id = r.endpoint_id AND r.hour >= now() - a.retention);
    RETURN merged;
END
$$;

-- Each endpoint's health over the last `since` (or of `endpoint_ids`
-- only): attempts, deliveries, success rate, latency (p50/p99 of the
-- attempts' durations, from the rollup's buckets: within a bucket's √2),
-- the last failed attempt, and its queue (undelivered and dead rows now).
-- Whole hours come from attempt_rollup, the window's first partial hour
-- from the attempt log (0.3.0; it read the whole window from the log).
CREATE FUNCTION endpoint_health(since interval DEFAULT '1 hour', endpoint_ids text[] DEFAULT NULL)
RETURNS TABLE (endpoint_id text, app_id text, url text, enabled boolean, circuit text,
               attempts bigint, delivered bigint, success_rate double precision,
               p50_ms double precision, p99_ms double precision, last_error_at timestamptz,
               last_status integer, last_error text, queued bigint, dead bigint)
LANGUAGE sql STABLE SECURITY DEFINER   -- the helpers it inlines are the owner's
SET search_path = pg_catalog, hookseal, pg_temp
-- A few thousand rollup rows: parallel workers' start-up and JIT compiling
-- (25 ms, the whole rest of the query took 3) cost more than they save.
SET max_parallel_workers_per_gather = 0
SET jit = off
AS $$
    -- The endpoints as an array either way (all of them for NULL), so the
    -- rollup is read through its (endpoint, hour) index.
    WITH parts AS (
        SELECT r.endpoint_id, r.bucket, r.attempts, r.delivered, r.last_failure_at, r.last_status,
               r.last_error
        FROM attempt_rollup r
        WHERE r.hour >= (SELECT _first_hour(now() - since))
          AND r.endpoint_id = ANY (coalesce(endpoint_ids, ARRAY(SELECT x.id FROM endpoints x)))
        UNION ALL
        SELECT t.endpoint_id, _latency_bucket(t.started_at, t.finished_at), 1,
               (t.error_class = 'ok')::integer,
               CASE WHEN t.error_class <> 'ok' THEN t.finished_at END,
               CASE WHEN t.error_class <> 'ok' THEN t.http_status END,
               CASE WHEN t.error_class <> 'ok' THEN coalesce(t.error, t.error_class) END
        FROM attempts t
        WHERE t.finished_at >= (SELECT now() - since)
          AND t.finished_at < (SELECT _first_hour(now() - since))
          AND _first_hour(now() - since) > now() - since   -- none when the window starts on the hour
          AND t.endpoint_id = ANY (coalesce(endpoint_ids, ARRAY(SELECT x.id FROM endpoints x)))
    ), b AS (
        SELECT p.endpoint_id, p.bucket, sum(p.attempts) AS n, sum(p.delivered) AS ok
        FROM parts p GROUP BY 1, 2
    ), c AS (
        SELECT b.endpoint_id, b.bucket, b.n, b.ok,
               sum(b.n) OVER (PARTITION BY b.endpoint_id ORDER BY b.bucket) AS upto,
               sum(b.n) OVER (PARTITION BY b.endpoint_id) AS total
        FROM b
    ), w AS (
        SELECT c.endpoint_id, max(c.total)::bigint AS attempts, sum(c.ok)::bigint AS delivered,
               min(_bucket_ms(c.bucket, (0.5 * c.total - (c.upto - c.n)) / c.n))
                   FILTER (WHERE c.upto >= 0.5 * c.total) AS p50,
               min(_bucket_ms(c.bucket, (0.99 * c.total - (c.upto - c.n)) / c.n))
                   FILTER (WHERE c.upto >= 0.99 * c.total) AS p99
        FROM c GROUP BY 1
    ), f AS (
        SELECT DISTINCT ON (p.endpoint_id) p.endpoint_id, p.last_failure_at, p.last_status, p.last_error
        FROM parts p WHERE p.last_failure_at IS NOT NULL
        ORDER BY p.endpoint_id, p.last_failure_at DESC
    )
    SELECT e.id, e.app_id, e.url, e.enabled, s.circuit,
           coalesce(w.attempts, 0), coalesce(w.delivered, 0),
           round((w.delivered::numeric / nullif(w.attempts, 0)), 4)::double precision,
           round(w.p50::numeric, 1)::double precision, round(w.p99::numeric, 1)::double precision,
           f.last_failure_at, f.last_status, f.last_error,
           (SELECT count(*) FROM outbox o
            WHERE o.endpoint_id = e.id AND o.status IN ('pending', 'delivering')),
           (SELECT count(*) FROM outbox o WHERE o.endpoint_id = e.id AND o.status = 'dead')
    FROM endpoints e
    JOIN endpoint_state s ON s.endpoint_id = e.id
    LEFT JOIN w ON w.endpoint_id = e.id
    LEFT JOIN f ON f.endpoint_id = e.id
    WHERE e.id = ANY (coalesce(endpoint_ids, ARRAY(SELECT x.id FROM endpoints x)))
    ORDER BY e.app_id, e.id
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
-- An endpoint's scheme; no such endpoint is a hookseal error naming it
-- (create_secret, create_keypair, rotate_secret).
CREATE FUNCTION _endpoint_scheme(endpoint text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    ep_scheme text;
BEGIN
    SELECT e.scheme INTO ep_scheme FROM endpoints e WHERE e.id = endpoint;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'hookseal: no endpoint %', coalesce(quote_literal(endpoint), 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN ep_scheme;
END
$$;

-- An endpoint that signs with v1a key pairs (0.3.0): its newest key is an
-- ed25519 signing key. Its rotations make key pairs, never HMAC secrets.
CREATE FUNCTION _endpoint_is_asymmetric(endpoint text) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT coalesce((SELECT _is_signing_key(e.scheme, s.secret)
                     FROM secrets s JOIN endpoints e ON e.id = s.webhook_id
                     WHERE s.webhook_id = endpoint
                     ORDER BY s.created_at DESC LIMIT 1), false)
$$;

CREATE FUNCTION create_secret(endpoint text, OUT secret_id text, OUT secret text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    ep_scheme text;
BEGIN
    ep_scheme := _endpoint_scheme(endpoint);
    IF _endpoint_is_asymmetric(endpoint) THEN
        RAISE EXCEPTION 'hookseal: endpoint % signs with v1a key pairs; an HMAC secret would '
                        'make it sign v1, which its receivers'' public keys cannot verify', endpoint
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'create_keypair() adds a key pair; rotate_secret() rotates them';
    END IF;
    secret := _new_secret(ep_scheme);
    INSERT INTO secrets (webhook_id, secret, hash)
    VALUES (endpoint, _encrypt_secret(secret), secret_hash(secret))
    RETURNING id INTO secret_id;
END
$$;

-- A v1a signing key for an endpoint whose scheme has asymmetric signatures
-- (`standard`): the private key (whsk_) is stored encrypted like a secret,
-- signs every delivery beside (or instead of) the HMAC secrets, and is never
-- returned; the receiver gets `public_key` (whpk_). Rotation as for
-- secrets: create the new key, then revoke_secret() the old one.
CREATE FUNCTION create_keypair(endpoint text, OUT secret_id text, OUT public_key text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    ep_scheme text;
    signing text;
BEGIN
    ep_scheme := _endpoint_scheme(endpoint);
    SELECT k.signing, k.public INTO signing, public_key FROM _new_keypair(ep_scheme) k;
    INSERT INTO secrets (webhook_id, secret, hash)
    VALUES (endpoint, _encrypt_secret(signing), secret_hash(signing))
    RETURNING id INTO secret_id;
END
$$;

CREATE FUNCTION create_endpoint(app text, url text, scheme text DEFAULT 'native',
                                event_types text[] DEFAULT NULL, retry text DEFAULT 'default',
                                options jsonb DEFAULT NULL,
                                OUT endpoint_id text, OUT secret_id text, OUT secret text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    schedule interval[] := retry_schedule(retry);
    why text;
BEGIN
    PERFORM _check_app(app);
    IF schedule IS NULL THEN
        RAISE EXCEPTION 'hookseal: unknown retry preset % (default, flinks)', retry
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    why := _endpoint_scheme_error(scheme);
    IF why IS NOT NULL THEN
        RAISE EXCEPTION 'hookseal: endpoint scheme: %', why USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM _check_endpoint_options(coalesce(options, '{}'), true);
    PERFORM _check_endpoint_options(jsonb_build_object('url', url, 'event_types', to_jsonb(event_types)),
                                    false);
    INSERT INTO endpoints (app_id, url, scheme, event_types, retry_schedule)
    VALUES (app, _normal_url(url), scheme, event_types, schedule)
    RETURNING id INTO endpoint_id;
    IF options - 'asymmetric' <> '{}' THEN
        PERFORM alter_endpoint(endpoint_id, options - 'asymmetric');
    END IF;
    -- {"asymmetric": true}: a v1a key pair instead of an HMAC secret, and
    -- `secret` is its public key (whpk_), for the receiver (0.2.0).
    IF (options -> 'asymmetric') = 'true'::jsonb THEN
        SELECT k.secret_id, k.public_key INTO secret_id, secret FROM create_keypair(endpoint_id) k;
    ELSE
        SELECT c.secret_id, c.secret INTO secret_id, secret FROM create_secret(endpoint_id) c;
    END IF;
END
$$;

-- Endpoint options, typed strictly (0.3.0): a boolean is JSON true/false
-- (not "true", "yes" or 1), a count is a JSON integer, a rate a JSON
-- number, an interval a string PostgreSQL reads as one, event_types an array
-- of non-empty strings. Each refusal names the option and what it takes.
-- Ranges are the table's CHECK constraints (see alter_endpoint()).
CREATE FUNCTION _check_endpoint_options(options jsonb, creating boolean) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    known text[] := ARRAY['url', 'event_types', 'retry', 'retry_jitter', 'ordered', 'max_in_flight',
                          'rate_limit', 'failure_threshold', 'probe_interval', 'disable_after'];
    unknown text;
    k text;
    v jsonb;
    t text;
    want text;
    url text;
BEGIN
    IF creating THEN
        known := array_append(known, 'asymmetric');
    END IF;
    IF jsonb_typeof(options) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'hookseal: endpoint options must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(o, ', ' ORDER BY o) INTO unknown FROM jsonb_object_keys(options) o
    WHERE NOT o = ANY (known);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'hookseal: unknown endpoint option(s): %', unknown
            USING ERRCODE = 'invalid_parameter_value', HINT = array_to_string(known, ', ');
    END IF;
    FOR k, v IN SELECT * FROM jsonb_each(options) LOOP
        t := jsonb_typeof(v);
        want := NULL;
        CASE
        WHEN k = 'url' THEN
            url := v #>> '{}';
            IF t <> 'string' THEN
                want := 'a string http://... or https://...';
            ELSIF url !~* '^https?://' THEN
                want := format('an http:// or https:// URL (got scheme %s)',
                               coalesce(quote_literal(substring(url FROM '^([A-Za-z][A-Za-z0-9+.-]*):')),
                                        'none'));
            ELSIF url ~ '[\s[:cntrl:]]' THEN
                want := 'a URL without spaces or control characters (percent-encode them)';
            ELSIF url ~* '^https?://[/?#]*$' THEN
                want := 'a URL with a host';
            END IF;
        WHEN k = 'event_types' THEN
            IF t = 'array' AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(v) x
                                           WHERE jsonb_typeof(x) <> 'string' OR x = '""') THEN
                NULL;
            ELSIF t <> 'null' THEN
                want := 'an array of non-empty strings, or null for every type';
            END IF;
        WHEN k = 'retry' THEN
            IF t <> 'string' THEN want := 'a retry preset name (default, flinks)'; END IF;
        WHEN k IN ('ordered', 'asymmetric') THEN
            IF t <> 'boolean' THEN want := 'true or false (a JSON boolean)'; END IF;
        WHEN k IN ('max_in_flight', 'failure_threshold') THEN
            IF NOT (t = 'number' AND v::numeric = trunc(v::numeric) AND abs(v::numeric) < 2147483648)
               AND NOT (t = 'null' AND k = 'max_in_flight') THEN
                want := CASE WHEN k = 'max_in_flight' THEN 'an integer 1..10000, or null for no limit'
                             ELSE 'an integer 1..1000000' END;
            END IF;
        WHEN k IN ('rate_limit', 'retry_jitter') THEN
            IF t <> 'number' AND NOT (t = 'null' AND k = 'rate_limit') THEN
                want := CASE WHEN k = 'rate_limit' THEN 'a number of deliveries per second > 0 and '
                                                        '<= 100000, or null for no limit'
                             ELSE 'a number >= 0 and < 1' END;
            END IF;
        WHEN k IN ('probe_interval', 'disable_after') THEN
            IF t = 'string' THEN
                BEGIN
                    PERFORM (v #>> '{}')::interval;
                EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow
                               OR interval_field_overflow THEN
                    want := 'an interval such as ''30 seconds''';
                END;
            ELSIF NOT (t = 'null' AND k = 'disable_after') THEN
                want := CASE WHEN k = 'disable_after' THEN 'an interval such as ''5 days'', or null: never'
                             ELSE 'an interval such as ''5 seconds''' END;
            END IF;
        ELSE
            NULL;
        END CASE;
        IF want IS NOT NULL THEN
            RAISE EXCEPTION 'hookseal: endpoint option % must be %', k, want
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
END
$$;

-- A URL as stored: its scheme in lower case (HTTPS://x is https://x).
CREATE FUNCTION _normal_url(url text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog
AS $$
    SELECT CASE WHEN url ~* '^https?://' THEN lower(substring(url FROM '^[A-Za-z]+'))
                                              || substring(url FROM '^[A-Za-z]+(.*)$')
                ELSE url END
$$;

-- Change an endpoint's settings. `options` is a JSON object; a key present
-- sets that setting (null clears the nullable ones), a key absent keeps it:
--   url, event_types (array or null), retry (a preset name), retry_jitter,
--   ordered (FIFO delivery), max_in_flight (all workers together),
--   rate_limit (deliveries per second, all workers together),
--   failure_threshold (failures in a row that open the circuit),
--   probe_interval, disable_after (an interval, or null: never disable).
-- False when there is no such endpoint.
CREATE FUNCTION alter_endpoint(endpoint text, options jsonb) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    unknown text;
    schedule interval[];
    column_ text;
BEGIN
    PERFORM _check_endpoint_options(options, false);
    IF options ? 'retry' THEN
        schedule := retry_schedule(options->>'retry');
        IF schedule IS NULL THEN
            RAISE EXCEPTION 'hookseal: unknown retry preset % (default, flinks)', options->>'retry'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    UPDATE endpoints e SET
        url = CASE WHEN options ? 'url' THEN _normal_url(options->>'url') ELSE e.url END,
        event_types = CASE WHEN NOT options ? 'event_types' THEN e.event_types
                           WHEN jsonb_typeof(options->'event_types') = 'null' THEN NULL
                           ELSE ARRAY(SELECT jsonb_array_elements_text(options->'event_types')) END,
        retry_schedule = coalesce(schedule, e.retry_schedule),
        retry_jitter = CASE WHEN options ? 'retry_jitter' THEN (options->>'retry_jitter')::real
                            ELSE e.retry_jitter END,
        ordered = CASE WHEN options ? 'ordered' THEN (options->>'ordered')::boolean ELSE e.ordered END,
        max_in_flight = CASE WHEN options ? 'max_in_flight'
                             THEN nullif(options->'max_in_flight', 'null')::numeric::integer
                             ELSE e.max_in_flight END,
        rate_limit = CASE WHEN options ? 'rate_limit' THEN (options->>'rate_limit')::real
                          ELSE e.rate_limit END,
        failure_threshold = CASE WHEN options ? 'failure_threshold'
                                 THEN (options->'failure_threshold')::numeric::integer
                                 ELSE e.failure_threshold END,
        probe_interval = CASE WHEN options ? 'probe_interval' THEN (options->>'probe_interval')::interval
                              ELSE e.probe_interval END,
        disable_after = CASE WHEN options ? 'disable_after' THEN (options->>'disable_after')::interval
                             ELSE e.disable_after END
    WHERE e.id = endpoint;
    RETURN FOUND;
EXCEPTION WHEN check_violation OR not_null_violation OR numeric_value_out_of_range THEN
    -- The constraint's own error carries the whole row (the URL among it).
    GET STACKED DIAGNOSTICS unknown = CONSTRAINT_NAME, column_ = COLUMN_NAME;
    RAISE EXCEPTION 'hookseal: endpoint option % has an invalid value',
        coalesce(nullif(column_, ''), nullif(regexp_replace(unknown, '^endpoints_(.*)_check$', '\1'), ''),
                 '(a number out of range)')
        USING ERRCODE = 'invalid_parameter_value',
              HINT = 'url http(s)://... without spaces, max_in_flight 1..10000, '
                     'rate_limit > 0 and <= 100000, failure_threshold 1..1000000, '
                     'probe_interval and disable_after > 0, retry_jitter >= 0 and < 1';
END
$$;

-- Turn an endpoint back on (after 410 Gone or the circuit breaker disabled
-- it) with a closed circuit. Its undelivered rows are sent again; events
-- written while it was disabled were not queued for it.
CREATE FUNCTION enable_endpoint(endpoint text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM endpoints e WHERE e.id = endpoint) THEN
        RETURN false;
    END IF;
    IF cardinality(_active_secrets(endpoint)) = 0 THEN
        RAISE EXCEPTION 'hookseal: endpoint % has no active secret to sign with', endpoint
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'create_secret() (or create_keypair() for v1a) first';
    END IF;
    UPDATE endpoints e SET enabled = true, disabled_reason = NULL WHERE e.id = endpoint;
    PERFORM _endpoints_healthy(ARRAY[endpoint], ARRAY[NULL]::timestamptz[]);
    RETURN true;
END
$$;

-- Each endpoint's settings, circuit and queue, for operators.
CREATE VIEW endpoint_status AS
SELECT e.id AS endpoint_id, e.app_id, e.url, e.enabled, e.disabled_reason, e.ordered,
       e.max_in_flight, e.rate_limit, e.failure_threshold, e.probe_interval, e.disable_after,
       s.circuit, s.consecutive_failures, s.failing_since, s.opened_at, s.next_probe_at,
       q.in_flight, q.due, q.pending,
       -- 0.3.0: why its rows wait, when they wait for the operator.
       k.active_secrets,
       CASE WHEN k.active_secrets = 0 THEN 'no active secret: its rows are held; '
                                           'create_secret() or create_keypair() releases them' END
           AS held_reason
FROM endpoints e
JOIN endpoint_state s ON s.endpoint_id = e.id
CROSS JOIN LATERAL (
    SELECT count(*) AS active_secrets FROM secrets x
    WHERE x.webhook_id = e.id AND x.revoked_at IS NULL
      AND (x.expires_at IS NULL OR x.expires_at > clock_timestamp())
) k
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE o.status = 'delivering' AND o.next_attempt_at > clock_timestamp()) AS in_flight,
           count(*) FILTER (WHERE o.next_attempt_at <= clock_timestamp()) AS due,
           count(*) FILTER (WHERE o.status = 'pending') AS pending
    FROM outbox o WHERE o.endpoint_id = e.id AND o.status IN ('pending', 'delivering')
) q;

-- The endpoint's secrets other than `keep` expire after `grace` (0: now),
-- never later than they already would: rotate_secret()'s rule, and
-- add_sealed_keypair()'s.
CREATE FUNCTION _expire_other_secrets(endpoint text, keep text, grace interval) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    UPDATE secrets s SET expires_at = clock_timestamp() + grace
    WHERE s.webhook_id = endpoint AND s.revoked_at IS NULL AND s.id <> keep
      AND (s.expires_at IS NULL OR s.expires_at > clock_timestamp() + grace)
$$;

-- Rotate: a new secret now (a new key pair for a v1a endpoint, 0.3.0: then
-- `secret` is its public key); the current ones stay valid (and are still
-- signed with) for `grace`, then expire. `grace` is 0 (expire now) or more.
CREATE FUNCTION rotate_secret(endpoint text, grace interval DEFAULT '24 hours',
                              OUT secret_id text, OUT secret text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    IF grace IS NULL OR grace < '0' THEN
        RAISE EXCEPTION 'hookseal: rotate_secret() needs a grace period of 0 or more (got %)',
            coalesce(grace::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'the current secrets keep signing for the grace period, then expire; '
                         '''0'' expires them now';
    END IF;
    PERFORM _endpoint_scheme(endpoint);
    IF _endpoint_is_asymmetric(endpoint) THEN
        SELECT k.secret_id, k.public_key INTO secret_id, secret FROM create_keypair(endpoint) k;
    ELSE
        SELECT c.secret_id, c.secret INTO secret_id, secret FROM create_secret(endpoint) c;
    END IF;
    PERFORM _expire_other_secrets(endpoint, secret_id, grace);
END
$$;

-- Revoke a secret at once. Refused when it would leave an enabled endpoint
-- with nothing to sign with, now or once the other secrets' grace periods
-- end (0.3.0: before, revoking the new secret during a rotation left the
-- endpoint with none when the old ones expired). A disabled endpoint may
-- lose its last secret; enable_endpoint() then asks for a new one.
CREATE FUNCTION revoke_secret(secret_id text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    ep text;
    lasting integer;
    until timestamptz;
BEGIN
    SELECT s.webhook_id INTO ep FROM secrets s WHERE s.id = secret_id AND s.revoked_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- The endpoint's other active secrets, locked so two revocations
    -- cannot each leave the other one's.
    PERFORM 1 FROM secrets s WHERE s.webhook_id = ep AND s.revoked_at IS NULL FOR UPDATE;
    SELECT count(*) FILTER (WHERE s.expires_at IS NULL), max(s.expires_at) INTO lasting, until
    FROM secrets s
    WHERE s.webhook_id = ep AND s.id <> secret_id AND s.revoked_at IS NULL
      AND (s.expires_at IS NULL OR s.expires_at > clock_timestamp());
    IF lasting = 0 AND EXISTS (SELECT 1 FROM endpoints e WHERE e.id = ep AND e.enabled) THEN
        RAISE EXCEPTION 'hookseal: revoking % would leave enabled endpoint % with no secret %', secret_id, ep,
            CASE WHEN until IS NULL THEN 'at all' ELSE format('once the others expire at %s', until) END
            USING ERRCODE = 'object_in_use',
                  HINT = 'rotate_secret() first (its new secret stays), or disable the endpoint';
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

-- Register the public key new secrets are sealed to (portable flavour,
-- 0.3.0); returns its key id. The newest registered key seals; the ones
-- before keep their secrets until hookseal reseal moves them (the
-- dispatchers hold every private key meanwhile). Registering a key again
-- makes it the newest.
CREATE FUNCTION register_sealing_key(public_key text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    key_id text;
BEGIN
    IF _flavour() = 'native' THEN
        RAISE EXCEPTION 'hookseal: the native flavour keeps secrets encrypted under its server key; '
                        'sealing keys are the portable flavour''s'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'rotate the server key with hookseal.old_server_keys and rewrap_secrets()';
    END IF;
    key_id := _sealing_key_id(public_key);
    INSERT INTO sealing_keys AS k (id, public_key) VALUES (key_id, btrim(public_key))
    ON CONFLICT (id) DO UPDATE SET created_at = clock_timestamp();
    RETURN key_id;
END
$$;

-- A v1a key pair made outside the database, for the portable flavour
-- (0.3.0): pgcrypto has no ed25519, so create_keypair() cannot make one
-- there. `hookseal keypair` makes the pair, seals the signing key to the
-- newest sealing key in the `pgp1k.` form (which tells this schema the
-- endpoint signs with key pairs) and hands it here with the SHA-256 (hex)
-- of its text; the public key goes to the receivers, never through here.
-- From then on the endpoint signs v1a with it, as after create_keypair();
-- `grace`: the endpoint's other secrets expire after it, as in
-- rotate_secret() (NULL: they stay). Returns the new secret's id.
CREATE FUNCTION add_sealed_keypair(endpoint text, sealed text, hash text,
                                   grace interval DEFAULT NULL) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    sealed_to text;
    newest text;
    new_id text;
BEGIN
    IF _flavour() = 'native' THEN
        RAISE EXCEPTION 'hookseal: the native flavour makes key pairs itself'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'create_keypair(endpoint); rotate_secret() rotates a v1a endpoint''s';
    END IF;
    IF coalesce(_scheme(_endpoint_scheme(endpoint)) -> 'asymmetric', 'null') = 'null' THEN
        RAISE EXCEPTION 'hookseal: endpoint %''s scheme has no v1a key pairs', endpoint
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'key pairs sign the standard scheme (v1a); create_secret() adds an HMAC secret';
    END IF;
    sealed_to := CASE WHEN starts_with(sealed, 'pgp1k.') THEN _sealed_key_id(sealed) END;
    IF sealed_to IS NULL THEN
        RAISE EXCEPTION 'hookseal: not a sealed signing key (pgp1k. and an OpenPGP message)'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'hookseal keypair --endpoint ID makes the pair and seals the signing key';
    END IF;
    newest := (_newest_sealing_key()).id;
    IF sealed_to IS DISTINCT FROM newest THEN
        RAISE EXCEPTION 'hookseal: the signing key is sealed to key %, not to the newest '
                        'registered sealing key %', sealed_to, coalesce(newest, '(none)')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'run hookseal keypair again: it seals to the newest key';
    END IF;
    IF hash IS NULL OR hash !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'hookseal: hash is the SHA-256 of the signing key''s text, '
                        '64 lower-case hex digits'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF grace < '0' THEN
        RAISE EXCEPTION 'hookseal: add_sealed_keypair() takes a grace period of 0 or more, or NULL '
                        '(got %)', grace
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO secrets (webhook_id, secret, hash) VALUES (endpoint, sealed, hash)
    RETURNING id INTO new_id;
    IF grace IS NOT NULL THEN
        PERFORM _expire_other_secrets(endpoint, new_id, grace);
    END IF;
    RETURN new_id;
END
$$;

-- The endpoint-owner portal (0.3.0) -----------------------------------------

-- Links that open `hookseal portal`'s owner pages for one app until they
-- expire. A link's token (hspl_ and 42 random nanoid characters, 252 bits:
-- two new_id('secret') tails) is returned once by portal_link(); only its
-- SHA-256 is kept, so no dump holds a usable link.
CREATE TABLE portal_links (
    token_hash  text PRIMARY KEY,               -- hex(sha256(token))
    app_id      text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX portal_links_expires ON portal_links (expires_at);

-- A link to the owner portal of `app`, valid for `ttl` (1 second to 7
-- days): the path to append to where `hookseal portal` is served
-- (/o/open/hspl_...). The operator's backend makes one per page view and
-- puts it in its iframe. Links that expired are removed here.
CREATE FUNCTION portal_link(app text, ttl interval DEFAULT '1 hour') RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    token text := 'hspl_' || substr(new_id('secret'), 8) || substr(new_id('secret'), 8);
BEGIN
    PERFORM _check_app(app);
    IF ttl IS NULL OR ttl < interval '1 second' OR ttl > interval '7 days' THEN
        RAISE EXCEPTION 'hookseal: portal_link() ttl must be from 1 second to 7 days (got %)',
            coalesce(ttl::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM portal_links l WHERE l.expires_at < clock_timestamp();
    INSERT INTO portal_links (token_hash, app_id, expires_at)
    VALUES (secret_hash(token), app, clock_timestamp() + ttl);
    RETURN '/o/open/' || token;
END
$$;

-- The app and expiry of a link's token, while it has not expired (no row
-- otherwise: unknown, expired and malformed tokens look the same).
CREATE FUNCTION open_portal_link(token text)
RETURNS TABLE (app_id text, expires_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT l.app_id, l.expires_at FROM portal_links l
    WHERE token ~ '^hspl_[A-Za-z0-9_-]{42}$' AND l.token_hash = secret_hash(token)
      AND l.expires_at > clock_timestamp()
$$;

-- Every link of `app` stops working now. Returns how many were live.
CREATE FUNCTION revoke_portal_links(app text) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    WITH d AS (DELETE FROM portal_links l WHERE l.app_id = app
               RETURNING l.expires_at > clock_timestamp() AS live)
    SELECT count(*) FILTER (WHERE live)::integer FROM d
$$;

-- Stop sending to an endpoint (its owner's choice, or the operator's):
-- new events are not queued for it, rows already queued wait until
-- enable_endpoint(). False when there is no such endpoint.
CREATE FUNCTION disable_endpoint(endpoint text, reason text DEFAULT 'disabled by its owner')
RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    WITH u AS (UPDATE endpoints e SET enabled = false, disabled_reason = left(reason, 200)
               WHERE e.id = endpoint RETURNING 1)
    SELECT count(*) = 1 FROM u
$$;

-- Delete an endpoint with its secrets, outbox rows and their attempts.
-- False when there is no such endpoint.
CREATE FUNCTION delete_endpoint(endpoint text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    PERFORM 1 FROM endpoints e WHERE e.id = endpoint FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    DELETE FROM attempts t WHERE t.outbox_id IN (SELECT o.id FROM outbox o WHERE o.endpoint_id = endpoint);
    DELETE FROM attempt_rollup r WHERE r.endpoint_id = endpoint;
    DELETE FROM endpoints e WHERE e.id = endpoint;
    RETURN true;
END
$$;

-- A test event (type hookseal.test) for one endpoint only, through the
-- outbox like any other: written to the endpoint's app, queued for this
-- endpoint whatever its event_types, and for no other endpoint. Returns
-- the event's id.
CREATE FUNCTION send_test_event(endpoint text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    ep endpoints;
    evt text;
BEGIN
    SELECT * INTO ep FROM endpoints e WHERE e.id = endpoint;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'hookseal: no endpoint %', coalesce(quote_literal(endpoint), 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    IF NOT ep.enabled THEN
        RAISE EXCEPTION 'hookseal: endpoint % is disabled: enable it to send it a test event', endpoint
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    INSERT INTO events (app_id, type, data)
    VALUES (ep.app_id, 'hookseal.test', jsonb_build_object('test', true, 'endpoint_id', endpoint))
    RETURNING id INTO evt;
    -- The fan-out queued it for every endpoint taking all types: keep only
    -- this one's row, and write it (unsigned: its claim signs it) when its
    -- event_types left it out.
    DELETE FROM outbox o WHERE o.event_id = evt AND o.app_id = ep.app_id AND o.endpoint_id <> endpoint;
    INSERT INTO outbox (event_id, app_id, endpoint_id, body, signed_at, ordered, headers)
    SELECT evt, ep.app_id, endpoint, _delivery_body(ep.scheme, event_body(v.id, v.type, v.created_at, v.data)),
           '-infinity', ep.ordered, '{}'
    FROM events v WHERE v.id = evt AND v.app_id = ep.app_id
    ON CONFLICT (event_id, endpoint_id) DO NOTHING;
    PERFORM pg_notify('hookseal_outbox', ep.app_id);
    RETURN evt;
END
$$;

-- Send one delivery again (delivered or dead), under its message id,
-- signed at its claim. False when the row is neither (queued, in flight,
-- or gone).
CREATE FUNCTION replay_delivery(outbox_id bigint) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT _requeue(ARRAY[outbox_id], 'delivered') + _requeue(ARRAY[outbox_id], 'dead') = 1
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
    webhook_verify_reason(text, text[], bytea, jsonb, integer, timestamptz, text),
    secret_hash(text), new_id(text), event_body(text, text, bigint, jsonb),
    scheme_exists(text), retry_schedule(text), webhook_public_key(text, text), _flavour()
TO hookseal_writer, hookseal_dispatcher, hookseal_admin;

GRANT EXECUTE ON FUNCTION webhook_send(text, text, jsonb), webhook_send(text, text, jsonb, text),
    webhook_send(text, text, jsonb, text, text)
    TO hookseal_writer, hookseal_admin;
GRANT EXECUTE ON FUNCTION claim(text, integer, interval, integer, text[]), ack(bigint, text, integer),
    ack_many(text, bigint[], integer[]), release(text, bigint[]),
    fail(bigint, text, integer, text, interval),
    ack_many(text, bigint[], integer[], integer[], timestamptz[], timestamptz[], boolean[], text[], text[]),
    fail(bigint, text, integer, text, interval, text, integer, timestamptz, timestamptz, boolean, text, text)
TO hookseal_dispatcher;
GRANT EXECUTE ON FUNCTION maintain(integer, integer) TO hookseal_dispatcher, hookseal_admin;
GRANT EXECUTE ON FUNCTION create_app(text), create_secret(text), create_keypair(text),
    create_endpoint(text, text, text, text[], text, jsonb), alter_endpoint(text, jsonb),
    enable_endpoint(text), rotate_secret(text, interval),
    revoke_secret(text), find_secret(text), rewrap_secrets(integer), redrive(bigint),
    redrive_endpoint(text, timestamptz), replay(text, timestamptz, timestamptz, text),
    event_attempts(text, text), endpoint_health(interval, text[]), register_sealing_key(text),
    add_sealed_keypair(text, text, text, interval)
TO hookseal_admin;
GRANT EXECUTE ON FUNCTION portal_link(text, interval), open_portal_link(text),
    revoke_portal_links(text), disable_endpoint(text, text), delete_endpoint(text),
    send_test_event(text), replay_delivery(bigint)
TO hookseal_admin;
GRANT SELECT ON apps, endpoints, endpoint_state, endpoint_status, events, outbox, attempts,
    attempt_rollup TO hookseal_admin;
GRANT UPDATE (name, retention, dead_retention) ON apps TO hookseal_admin;
GRANT UPDATE (enabled, disabled_reason, url, event_types, retry_schedule, retry_jitter, ordered,
              max_in_flight, rate_limit, failure_threshold, probe_interval, disable_after)
    ON endpoints TO hookseal_admin;
GRANT SELECT (id, webhook_id, hash, created_at, expires_at, revoked_at) ON secrets TO hookseal_admin;
-- Public keys only: who seals to which key is no secret.
GRANT SELECT ON sealing_keys TO hookseal_admin;
