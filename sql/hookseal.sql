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
    rate_tat              timestamptz    -- rate limit: when the next send slot opens (GCRA)
);

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
    ordered           boolean NOT NULL DEFAULT false, -- the endpoint's FIFO option, copied (0.2.0)
    UNIQUE (event_id, endpoint_id)
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
-- Ordered endpoints: writers to one take a transaction lock before their row
-- gets its id, so ids (the FIFO order) follow commit order.
CREATE FUNCTION _fan_out() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    payload text := event_body(NEW.id, NEW.type, NEW.created_at, NEW.data);
    signed_at timestamptz := clock_timestamp();
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('hookseal.fifo'), hashtext(e.id))
    FROM endpoints e
    WHERE e.app_id = NEW.app_id AND e.enabled AND e.ordered
      AND (e.event_types IS NULL OR NEW.type = ANY (e.event_types))
    ORDER BY e.id;
    INSERT INTO outbox (event_id, endpoint_id, body, signed_at, ordered, headers)
    SELECT NEW.id, e.id, m.body, signed_at, e.ordered,
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
-- last minute is sent as signed; anything else is re-signed now. Generic
-- plans: planning the statement anew per call measured about 0.25 ms, a
-- quarter of a small claim (bench/dispatch.sh --compare).
CREATE FUNCTION claim(worker text, batch integer DEFAULT 100, lease interval DEFAULT '60 seconds',
                      per_endpoint integer DEFAULT 32, skip text[] DEFAULT NULL)
RETURNS TABLE (outbox_id bigint, event_id text, endpoint_id text, url text, body text,
               headers jsonb, attempt integer, send_delay double precision)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    now_ timestamptz := clock_timestamp();
    active text[];
    held text[];
BEGIN
    IF batch IS NULL OR batch < 1 OR per_endpoint IS NULL OR per_endpoint < 1
       OR lease IS NULL OR lease < '0' THEN
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
    )
    UPDATE outbox o
    SET status = 'delivering',
        lease_owner = worker,
        lease_expires_at = now_ + lease,
        next_attempt_at = now_ + lease,
        attempts = o.attempts + 1,
        signed_at = CASE WHEN o.attempts = 0 AND o.signed_at > now_ - interval '60 seconds'
                         THEN o.signed_at ELSE now_ END,
        headers = CASE WHEN o.attempts = 0 AND o.signed_at > now_ - interval '60 seconds' THEN o.headers
                       ELSE _sign_stored(e.scheme, _active_secrets(o.endpoint_id), o.body,
                                         o.event_id, now_) END
    FROM numbered n, endpoints e
    WHERE o.id = n.id AND e.id = o.endpoint_id
    RETURNING o.id, o.event_id, o.endpoint_id, e.url, o.body, o.headers, o.attempts,
              n.delay::double precision;
END
$$;

-- A delivery closes the endpoint's circuit and ends its run of failures.
CREATE FUNCTION _endpoints_healthy(endpoint_ids text[]) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    UPDATE endpoint_state s
    SET circuit = 'closed', consecutive_failures = 0, failing_since = NULL,
        next_probe_at = NULL, probe_backoff = NULL, probe_outbox_id = NULL
    WHERE s.endpoint_id = ANY (endpoint_ids)
      AND (s.consecutive_failures > 0 OR s.circuit <> 'closed')
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
        RETURNING endpoint_id
    ), healed AS (
        SELECT _endpoints_healthy(array_agg(endpoint_id)) FROM done
    )
    SELECT EXISTS (SELECT 1 FROM done) AND EXISTS (SELECT 1 FROM healed)
$$;

-- Record many deliveries in one statement (the dispatcher's batched ack).
-- Returns the ids that were recorded; an id missing from the answer had lost
-- its lease (another worker took it over).
CREATE FUNCTION ack_many(worker text, outbox_ids bigint[], http_statuses integer[])
RETURNS SETOF bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    WITH done AS (
        UPDATE outbox o
        SET status = 'delivered', delivered_at = clock_timestamp(), last_status = a.http_status,
            last_error = NULL, lease_owner = NULL, lease_expires_at = NULL
        FROM unnest(outbox_ids, http_statuses) AS a(id, http_status)
        WHERE o.id = a.id AND o.lease_owner = worker AND o.status = 'delivering'
        RETURNING o.id, o.endpoint_id
    ), healed AS (
        SELECT _endpoints_healthy(array_agg(DISTINCT endpoint_id ORDER BY endpoint_id)) FROM done
    )
    SELECT id FROM done WHERE EXISTS (SELECT 1 FROM healed)
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
-- last, disable the endpoint on 410 Gone. Every failure also counts against
-- the endpoint: failure_threshold failures in a row open its circuit (its
-- rows wait, unattempted, while one probe at a time tests it, first after
-- probe_interval, then twice as long after each failed probe, up to 10
-- minutes or probe_interval if longer); failing for disable_after disables it.
-- Returns the row's new status, or NULL when `worker` no longer holds the lease.
CREATE FUNCTION fail(outbox_id bigint, worker text, http_status integer, error text,
                     retry_after interval DEFAULT NULL)
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
        next_attempt_at = CASE WHEN next_status = 'pending' THEN now_ + delay
                               ELSE o.next_attempt_at END,
        last_status = http_status,
        last_error = left(error, 1000),
        lease_owner = NULL,
        lease_expires_at = NULL
    WHERE o.id = outbox_id;
    PERFORM _endpoint_failed(ep, outbox_id, now_);
    RETURN next_status;
END
$$;

-- The circuit breaker's side of a failed attempt (see fail()).
CREATE FUNCTION _endpoint_failed(ep endpoints, outbox_id bigint, now_ timestamptz) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    st endpoint_state;
BEGIN
    SELECT * INTO st FROM endpoint_state s WHERE s.endpoint_id = ep.id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    st.consecutive_failures := st.consecutive_failures + 1;
    st.failing_since := coalesce(st.failing_since, now_);
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
        probe_outbox_id = st.probe_outbox_id
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
                                options jsonb DEFAULT NULL,
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
    IF options IS NOT NULL THEN
        PERFORM alter_endpoint(endpoint_id, options);
    END IF;
    SELECT c.secret_id, c.secret INTO secret_id, secret FROM create_secret(endpoint_id) c;
END
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
    IF jsonb_typeof(options) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'hookseal: endpoint options must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(k, ', ' ORDER BY k) INTO unknown FROM jsonb_object_keys(options) k
    WHERE k NOT IN ('url', 'event_types', 'retry', 'retry_jitter', 'ordered', 'max_in_flight',
                    'rate_limit', 'failure_threshold', 'probe_interval', 'disable_after');
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'hookseal: unknown endpoint option(s): %', unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'url, event_types, retry, retry_jitter, ordered, max_in_flight, rate_limit, '
                         'failure_threshold, probe_interval, disable_after';
    END IF;
    IF options ? 'retry' THEN
        schedule := retry_schedule(options->>'retry');
        IF schedule IS NULL THEN
            RAISE EXCEPTION 'hookseal: unknown retry preset % (default, flinks)', options->>'retry'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    UPDATE endpoints e SET
        url = CASE WHEN options ? 'url' THEN options->>'url' ELSE e.url END,
        event_types = CASE WHEN NOT options ? 'event_types' THEN e.event_types
                           WHEN jsonb_typeof(options->'event_types') = 'null' THEN NULL
                           ELSE ARRAY(SELECT jsonb_array_elements_text(options->'event_types')) END,
        retry_schedule = coalesce(schedule, e.retry_schedule),
        retry_jitter = CASE WHEN options ? 'retry_jitter' THEN (options->>'retry_jitter')::real
                            ELSE e.retry_jitter END,
        ordered = CASE WHEN options ? 'ordered' THEN (options->>'ordered')::boolean ELSE e.ordered END,
        max_in_flight = CASE WHEN options ? 'max_in_flight' THEN (options->>'max_in_flight')::integer
                             ELSE e.max_in_flight END,
        rate_limit = CASE WHEN options ? 'rate_limit' THEN (options->>'rate_limit')::real
                          ELSE e.rate_limit END,
        failure_threshold = CASE WHEN options ? 'failure_threshold'
                                 THEN (options->>'failure_threshold')::integer
                                 ELSE e.failure_threshold END,
        probe_interval = CASE WHEN options ? 'probe_interval' THEN (options->>'probe_interval')::interval
                              ELSE e.probe_interval END,
        disable_after = CASE WHEN options ? 'disable_after' THEN (options->>'disable_after')::interval
                             ELSE e.disable_after END
    WHERE e.id = endpoint;
    RETURN FOUND;
EXCEPTION WHEN check_violation OR not_null_violation THEN
    -- The constraint's own error carries the whole row (the URL among it).
    GET STACKED DIAGNOSTICS unknown = CONSTRAINT_NAME, column_ = COLUMN_NAME;
    RAISE EXCEPTION 'hookseal: endpoint option % has an invalid value',
        coalesce(nullif(column_, ''), regexp_replace(unknown, '^endpoints_(.*)_check$', '\1'))
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
    UPDATE endpoints e SET enabled = true, disabled_reason = NULL WHERE e.id = endpoint;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM _endpoints_healthy(ARRAY[endpoint]);
    RETURN true;
END
$$;

-- Each endpoint's settings, circuit and queue, for operators.
CREATE VIEW endpoint_status AS
SELECT e.id AS endpoint_id, e.app_id, e.url, e.enabled, e.disabled_reason, e.ordered,
       e.max_in_flight, e.rate_limit, e.failure_threshold, e.probe_interval, e.disable_after,
       s.circuit, s.consecutive_failures, s.failing_since, s.opened_at, s.next_probe_at,
       q.in_flight, q.due, q.pending
FROM endpoints e
JOIN endpoint_state s ON s.endpoint_id = e.id
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE o.status = 'delivering' AND o.next_attempt_at > clock_timestamp()) AS in_flight,
           count(*) FILTER (WHERE o.next_attempt_at <= clock_timestamp()) AS due,
           count(*) FILTER (WHERE o.status = 'pending') AS pending
    FROM outbox o WHERE o.endpoint_id = e.id AND o.status IN ('pending', 'delivering')
) q;

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
GRANT EXECUTE ON FUNCTION claim(text, integer, interval, integer, text[]), ack(bigint, text, integer),
    ack_many(text, bigint[], integer[]), release(text, bigint[]),
    fail(bigint, text, integer, text, interval) TO hookseal_dispatcher;
GRANT EXECUTE ON FUNCTION create_app(text), create_secret(text),
    create_endpoint(text, text, text, text[], text, jsonb), alter_endpoint(text, jsonb),
    enable_endpoint(text), rotate_secret(text, interval),
    revoke_secret(text), find_secret(text), rewrap_secrets(integer), redrive(bigint)
TO hookseal_admin;
GRANT SELECT ON apps, endpoints, endpoint_state, endpoint_status, events, outbox TO hookseal_admin;
GRANT UPDATE (enabled, disabled_reason, url, event_types, retry_schedule, retry_jitter, ordered,
              max_in_flight, rate_limit, failure_threshold, probe_interval, disable_after)
    ON endpoints TO hookseal_admin;
GRANT SELECT (id, webhook_id, hash, created_at, expires_at, revoked_at) ON secrets TO hookseal_admin;
