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
--
-- Delivery flow control: endpoints gain ordered, max_in_flight, rate_limit and
-- circuit-breaker settings; endpoint_state holds each one's circuit and rate
-- limiter; claim() hands out work per endpoint over per-endpoint indexes.

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

UPDATE outbox o
SET body = webhook_body(e.scheme, o.body), signed_at = '-infinity'
FROM endpoints e
WHERE e.id = o.endpoint_id
  AND o.status <> 'delivered'
  AND webhook_body(e.scheme, o.body) <> o.body;


-- Flow control ----------------------------------------------------------------
-- Per-endpoint scheduling: fair claims across endpoints, a circuit breaker,
-- rate and concurrency limits, FIFO endpoints (see claim()).

ALTER TABLE endpoints
    ADD COLUMN ordered            boolean NOT NULL DEFAULT false,
    ADD COLUMN max_in_flight      integer CHECK (max_in_flight BETWEEN 1 AND 10000),
    ADD COLUMN rate_limit         real CHECK (rate_limit > 0 AND rate_limit <= 100000),
    ADD COLUMN failure_threshold  integer NOT NULL DEFAULT 5 CHECK (failure_threshold BETWEEN 1 AND 1000000),
    ADD COLUMN probe_interval     interval NOT NULL DEFAULT '5 seconds' CHECK (probe_interval > '0'),
    ADD COLUMN disable_after      interval DEFAULT '5 days' CHECK (disable_after > '0');

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
INSERT INTO endpoint_state (endpoint_id) SELECT id FROM endpoints;

ALTER TABLE outbox ADD COLUMN ordered boolean NOT NULL DEFAULT false;
-- A delivering row is due again when its lease runs out.
UPDATE outbox SET next_attempt_at = lease_expires_at
WHERE status = 'delivering' AND lease_expires_at IS NOT NULL;
DROP INDEX outbox_due;
CREATE INDEX outbox_endpoint_due ON outbox (endpoint_id, next_attempt_at)
    WHERE status IN ('pending', 'delivering');
CREATE INDEX outbox_fifo ON outbox (endpoint_id, id) WHERE ordered AND status IN ('pending', 'delivering');

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

DROP FUNCTION claim(text, integer, interval);
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

CREATE OR REPLACE FUNCTION ack(outbox_id bigint, worker text, http_status integer) RETURNS boolean
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

CREATE OR REPLACE FUNCTION ack_many(worker text, outbox_ids bigint[], http_statuses integer[])
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

CREATE OR REPLACE FUNCTION fail(outbox_id bigint, worker text, http_status integer, error text,
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

DROP FUNCTION create_endpoint(text, text, text, text[], text);
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

REVOKE ALL ON FUNCTION webhook_sign_message(text, text, text, text, timestamptz),
    webhook_body(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook_sign_message(text, text, text, text, timestamptz),
    webhook_body(text, text)
TO hookseal_writer, hookseal_dispatcher, hookseal_admin;

REVOKE ALL ON FUNCTION claim(text, integer, interval, integer, text[]), _endpoints_healthy(text[]),
    _endpoint_failed(endpoints, bigint, timestamptz), _endpoint_changed(),
    create_endpoint(text, text, text, text[], text, jsonb), alter_endpoint(text, jsonb),
    enable_endpoint(text) FROM PUBLIC;
REVOKE ALL ON endpoint_state, endpoint_status FROM PUBLIC;
GRANT EXECUTE ON FUNCTION claim(text, integer, interval, integer, text[]) TO hookseal_dispatcher;
GRANT EXECUTE ON FUNCTION create_endpoint(text, text, text, text[], text, jsonb),
    alter_endpoint(text, jsonb), enable_endpoint(text) TO hookseal_admin;
GRANT SELECT ON endpoint_state, endpoint_status TO hookseal_admin;
GRANT UPDATE (ordered, max_in_flight, rate_limit, failure_threshold, probe_interval, disable_after)
    ON endpoints TO hookseal_admin;
