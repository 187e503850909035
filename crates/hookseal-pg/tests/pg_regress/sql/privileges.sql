-- The privilege matrix, generated: as each role (none, writer, dispatcher,
-- admin) call every function of the extension with NULL arguments (from a
-- subquery, so the planner cannot fold a strict call away before the
-- privilege check) and try SELECT and UPDATE column by column, INSERT and
-- DELETE on every table (SELECT on views), each inside a subtransaction
-- that is always rolled back. The outcome is compared with this suite's
-- expected output, the committed matrix:
--   ok      the statement ran (privilege granted; NULLs accepted)
--   denied  SQLSTATE 42501 (no privilege on the schema, function, table or
--           column, or the function's own role check)
--   error   another SQLSTATE: the privilege check passed and the function or
--           a constraint refused the NULLs (so the role may call it)
--   trigger a trigger function (only the trigger may call it)
--   all     (select, update) every column; else the columns allowed
-- A new function or table shows up here as a new row: the expected output
-- must be reviewed and updated with it.
-- Type names schema-qualified in the generated calls.
SET search_path = pg_catalog;
SET client_min_messages = warning;

CREATE ROLE regress_p_none;
CREATE ROLE regress_p_writer IN ROLE hookseal_writer;
CREATE ROLE regress_p_dispatcher IN ROLE hookseal_dispatcher;
CREATE ROLE regress_p_admin IN ROLE hookseal_admin;
CREATE TEMP TABLE matrix (object text, action text, role text, outcome text);
GRANT INSERT ON matrix TO PUBLIC;

CREATE FUNCTION pg_temp.attempt(r text, stmt text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    st text;
BEGIN
    BEGIN
        EXECUTE format('SET LOCAL ROLE %I', r);
        EXECUTE stmt;
        RAISE EXCEPTION 'rolled back' USING ERRCODE = 'HS000';
    EXCEPTION WHEN OTHERS THEN
        st := SQLSTATE;
    END;
    RETURN CASE st WHEN 'HS000' THEN 'ok' WHEN '42501' THEN 'denied' ELSE 'error' END;
END
$$;

DO $$
DECLARE
    f record;
    t record;
    r text;
    stmt text;
BEGIN
    FOREACH r IN ARRAY ARRAY['none', 'writer', 'dispatcher', 'admin'] LOOP
        FOR f IN
            SELECT p.oid::regprocedure::text AS sig, p.prorettype = 'trigger'::regtype AS trig,
                   format('SELECT hookseal.%I(%s)', p.proname,
                          coalesce((SELECT string_agg(format('(SELECT NULL::%s)', format_type(a, NULL)), ', ' ORDER BY i)
                                    FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS x(a, i)), '')) AS call
            FROM pg_proc p
            WHERE p.pronamespace = 'hookseal'::regnamespace
        LOOP
            INSERT INTO matrix VALUES (regexp_replace(f.sig, '^hookseal\.', ''), 'execute', r,
                CASE WHEN f.trig THEN 'trigger' ELSE pg_temp.attempt('regress_p_' || r, f.call) END);
        END LOOP;
        FOR t IN
            SELECT c.relname, c.relkind FROM pg_class c
            WHERE c.relnamespace = 'hookseal'::regnamespace AND c.relkind IN ('r', 'v', 'p')
        LOOP
            INSERT INTO matrix
            SELECT t.relname, x.action, r,
                   CASE WHEN count(*) FILTER (WHERE x.outcome <> 'denied') = 0 THEN 'denied'
                        WHEN count(*) FILTER (WHERE x.outcome = 'denied') = 0 THEN 'all'
                        ELSE string_agg(x.attname, ',' ORDER BY x.attnum)
                             FILTER (WHERE x.outcome <> 'denied') END
            FROM (SELECT a.attname, a.attnum, v.action,
                         pg_temp.attempt('regress_p_' || r, format(v.stmt, t.relname, a.attname)) AS outcome
                  FROM pg_attribute a,
                       (VALUES ('select', 'SELECT %2$I FROM hookseal.%1$I WHERE false'),
                               ('update', 'UPDATE hookseal.%1$I SET %2$I = DEFAULT WHERE false')) v(action, stmt)
                  WHERE a.attrelid = format('hookseal.%I', t.relname)::regclass
                    AND a.attnum > 0 AND NOT a.attisdropped
                    AND (t.relkind <> 'v' OR v.action = 'select')) x
            GROUP BY x.action;
            CONTINUE WHEN t.relkind = 'v';
            INSERT INTO matrix VALUES
                (t.relname, 'insert', r,
                 pg_temp.attempt('regress_p_' || r, format('INSERT INTO hookseal.%I DEFAULT VALUES', t.relname))),
                (t.relname, 'delete', r,
                 pg_temp.attempt('regress_p_' || r, format('DELETE FROM hookseal.%I WHERE false', t.relname)));
        END LOOP;
        -- Sequences: nextval.
        FOR t IN SELECT c.relname FROM pg_class c
                 WHERE c.relnamespace = 'hookseal'::regnamespace AND c.relkind = 'S' LOOP
            INSERT INTO matrix VALUES (t.relname, 'nextval', r,
                pg_temp.attempt('regress_p_' || r, format('SELECT nextval(%L)', 'hookseal.' || t.relname)));
        END LOOP;
    END LOOP;
END
$$;

\pset pager off
SELECT object, action,
       max(outcome) FILTER (WHERE role = 'none') AS "none",
       max(outcome) FILTER (WHERE role = 'writer') AS writer,
       max(outcome) FILTER (WHERE role = 'dispatcher') AS dispatcher,
       max(outcome) FILTER (WHERE role = 'admin') AS "admin"
FROM matrix
GROUP BY object, action
ORDER BY action <> 'execute', object, action;

-- The invariants the matrix must show, as a query that must return no
-- row: no role reads the encrypted secret column or calls the functions
-- that decrypt, encrypt or sign with stored secrets (only the extension's
-- SECURITY DEFINER functions do); a role without a grant can do nothing;
-- only the dispatcher claims, acks and fails; only the admin manages.
SELECT object, action, role, outcome FROM matrix
WHERE (object = 'secrets' AND action = 'select' AND outcome NOT IN ('denied', 'id,webhook_id,hash,created_at,expires_at,revoked_at'))
   OR (object ~ '^_(decrypt|encrypt|sign_stored|rewrap|new_secret|new_keypair|active_secrets)' AND outcome <> 'denied')
   OR (role = 'none' AND outcome NOT IN ('denied', 'trigger'))
   OR (object ~ '^(claim|ack|ack_many|fail|release)\(' AND (role = 'dispatcher') <> (outcome <> 'denied'))
   OR (object ~ '^(create_|alter_endpoint|enable_endpoint|rotate_secret|revoke_secret|rewrap_secrets|redrive|replay)'
       AND (role = 'admin') <> (outcome <> 'denied'));

DROP ROLE regress_p_none, regress_p_writer, regress_p_dispatcher, regress_p_admin;
