-- hookseal, portable flavour: signing in PL/pgSQL on pgcrypto.
--
-- The native flavour's Rust functions of the same names and signatures,
-- for databases that load no library of ours (RDS, Aurora, Cloud SQL,
-- AlloyDB, Azure, Supabase, Neon): pgcrypto (a trusted extension since
-- PostgreSQL 13) gives HMAC-SHA256/512, SHA-256 and random bytes. The
-- scheme descriptions are the core's (presets.sql, generated from it); this
-- file interprets them, byte for byte as the core signs
-- (tests/portable/signing.sh compares both flavours on every preset and the
-- vectors).
--
-- What differs from the native flavour, each with its own error:
-- - Schemes that re-serialize JSON (x-signature, fincra: JSON.stringify of
--   the parsed body) are not signed here: SQL has no exact JSON.stringify.
--   The dispatcher signs their deliveries with the core.
-- - ed25519 (v1a) keys: pgcrypto has no ed25519.
-- - Scheme descriptions in TOML: write them as JSON.
-- - Descriptions are checked for what signing reads (fields, types, the
--   template); the core checks the rest where it signs.
-- pgcrypto is reached through _hmac(), _random_bytes(), _pgp_pub_encrypt(),
-- _pgp_key_id() and _dearmor() only.
-- Objects are created in the first schema of the search_path: the
-- installer (crates/hookseal-postgres/src/install.rs) sets it to hookseal.

-- The error every refusal here raises: 22023 and "hookseal: ...", as the
-- native functions do. Never given a secret.
CREATE FUNCTION _refuse(msg text) RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'hookseal: %', msg USING ERRCODE = 'invalid_parameter_value';
END
$$;

-- pgcrypto's HMAC and random bytes, written against the schema pgcrypto
-- is in (public on most servers, `extensions` on Supabase), found when the
-- script runs: the script itself names no schema but hookseal's.
DO $pgcrypto$
DECLARE
    s text := (SELECT quote_ident(n.nspname) FROM pg_catalog.pg_extension x
               JOIN pg_catalog.pg_namespace n ON n.oid = x.extnamespace
               WHERE x.extname = 'pgcrypto');
BEGIN
    IF s IS NULL THEN
        RAISE EXCEPTION 'hookseal: the portable flavour needs pgcrypto'
            USING ERRCODE = 'undefined_object',
                  HINT = 'CREATE EXTENSION pgcrypto (trusted since PostgreSQL 13: the database owner may)';
    END IF;
    EXECUTE format($f$
        CREATE FUNCTION _hmac(data bytea, key bytea, algorithm text) RETURNS bytea
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        SET search_path = pg_catalog, pg_temp
        AS 'SELECT %s.hmac(data, key, algorithm)'$f$, s);
    EXECUTE format($f$
        CREATE FUNCTION _random_bytes(n integer) RETURNS bytea
        LANGUAGE sql VOLATILE STRICT PARALLEL SAFE
        SET search_path = pg_catalog, pg_temp
        AS 'SELECT %s.gen_random_bytes(n)'$f$, s);
    -- Sealing (secrets.sql): OpenPGP public-key encryption, the key id a
    -- key or a sealed message names, armor.
    EXECUTE format($f$
        CREATE FUNCTION _pgp_pub_encrypt(data text, key bytea) RETURNS bytea
        LANGUAGE sql VOLATILE STRICT PARALLEL SAFE
        SET search_path = pg_catalog, pg_temp
        AS 'SELECT %s.pgp_pub_encrypt(data, key)'$f$, s);
    EXECUTE format($f$
        CREATE FUNCTION _pgp_key_id(data bytea) RETURNS text
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        SET search_path = pg_catalog, pg_temp
        AS 'SELECT %s.pgp_key_id(data)'$f$, s);
    EXECUTE format($f$
        CREATE FUNCTION _dearmor(data text) RETURNS bytea
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        SET search_path = pg_catalog, pg_temp
        AS 'SELECT %s.dearmor(data)'$f$, s);
END
$pgcrypto$;

-- The core's one message-id rule: 1 to max_message_id_len bytes of
-- printable ASCII (`!` to `~`).
CREATE FUNCTION _is_message_id(id text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$ SELECT coalesce(octet_length(id) BETWEEN 1 AND _core_limit('max_message_id_len')
                      AND id ~ '^[!-~]+$', false) $$;

-- A header or parameter name: letters, digits, `-`, `_`, `.` (the core's
-- is_header_token).
CREATE FUNCTION _is_token(name text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$ SELECT coalesce(name ~ '^[A-Za-z0-9._-]+$', false) $$;

-- The template's parts, in order, as (kind, text): kind is literal, id,
-- timestamp, body, json (text = the field), headers or header_names. `{{` and `}}` are
-- literal braces. Refuses what the core's Template::parse refuses.
CREATE FUNCTION _template_parts(template text, OUT kind text, OUT value text)
RETURNS SETOF record
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    i int := 1;
    n int := length(template);
    c text;
    lit text := '';
    name text;
    close int;
BEGIN
    WHILE i <= n LOOP
        c := substr(template, i, 1);
        IF c = '{' AND substr(template, i + 1, 1) = '{' THEN
            lit := lit || '{'; i := i + 2;
        ELSIF c = '}' AND substr(template, i + 1, 1) = '}' THEN
            lit := lit || '}'; i := i + 2;
        ELSIF c = '{' THEN
            close := strpos(substr(template, i + 1), '}');
            IF close = 0 THEN
                PERFORM _refuse(format('bad message template: unclosed `{` in %s', to_json(template)));
            END IF;
            name := substr(template, i + 1, close - 1);
            IF lit <> '' THEN
                kind := 'literal'; value := lit; RETURN NEXT; lit := '';
            END IF;
            value := NULL;
            IF name IN ('id', 'timestamp', 'body', 'headers', 'header_names') THEN
                kind := name;
            ELSIF name LIKE 'json:_%' THEN
                kind := 'json'; value := substr(name, 6);
            ELSE
                PERFORM _refuse(format('bad message template: unknown placeholder `{%s}` in %s',
                                       name, to_json(template)));
            END IF;
            RETURN NEXT;
            i := i + close + 1;
        ELSIF c = '}' THEN
            PERFORM _refuse(format('bad message template: lone `}` in %s', to_json(template)));
        ELSE
            lit := lit || c; i := i + 1;
        END IF;
    END LOOP;
    IF lit <> '' THEN
        kind := 'literal'; value := lit; RETURN NEXT;
    END IF;
END
$$;

-- The tags of a scheme's list items (versions, tag, timestamp, names),
-- sorted: what `format.order` must name, each once.
CREATE FUNCTION _list_tags(s jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT array_agg(t ORDER BY t COLLATE "C")
    FROM (SELECT v ->> 'tag' FROM jsonb_array_elements(s -> 'stronger') v
          UNION ALL SELECT s #>> '{format,tag}'
          UNION ALL SELECT s #>> '{format,timestamp_tag}'
          UNION ALL SELECT s #>> '{signed_headers,tag}') x(t)
    WHERE t IS NOT NULL
$$;

-- The list `value` (items `{tag}{tag_sep}...` joined by `sep`) with its
-- items in `ord`'s order of their tags, items of one tag keeping theirs
-- (the core's sign::in_order).
CREATE FUNCTION _in_order(value text, sep text, tag_sep text, ord jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT string_agg(i.item, sep ORDER BY coalesce(o.r, 1000000), i.n)
    FROM unnest(string_to_array(value, sep)) WITH ORDINALITY AS i(item, n)
    LEFT JOIN jsonb_array_elements_text(ord) WITH ORDINALITY AS o(tag, r)
           ON o.tag = split_part(i.item, tag_sep, 1)
$$;

-- A scheme argument (a preset name or a JSON description) as the core's
-- JSON form, defaults filled in, checked for what signing reads.
CREATE FUNCTION _scheme(scheme text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    t text := btrim(scheme, E' \t\n\r');
    s jsonb;
    why text;
BEGIN
    IF t LIKE '{%' THEN
        BEGIN
            s := t::jsonb;
        EXCEPTION WHEN invalid_text_representation THEN
            PERFORM _refuse('scheme description does not parse: not JSON');
        END;
        IF jsonb_typeof(s) <> 'object' THEN
            PERFORM _refuse('scheme description does not parse: not a JSON object');
        END IF;
        s := jsonb_build_object('format', '{}'::jsonb, 'id_header', NULL, 'timestamp', NULL,
                                'json_fallback', 'none', 'asymmetric', NULL,
                                'header_aliases', NULL, 'stronger', '[]'::jsonb,
                                'signed_headers', NULL, 'min_secret_len', 1) || s;
        s := jsonb_set(s, '{format}', jsonb_build_object('tag', NULL, 'tag_separator', '',
                       'list_separator', NULL, 'timestamp_tag', NULL) || (s -> 'format'));
        IF jsonb_typeof(s -> 'signed_headers') = 'object' THEN
            s := jsonb_set(s, '{signed_headers}', jsonb_build_object('each', E'{name}:{value}\n', 'join', '')
                           || (s -> 'signed_headers'));
        END IF;
    ELSIF t ~ '=' THEN
        PERFORM _refuse('scheme descriptions in TOML need the native flavour; write the description as JSON');
    ELSE
        SELECT p INTO s FROM jsonb_array_elements(_scheme_presets()) p WHERE p ->> 'name' = t;
        IF s IS NULL THEN
            PERFORM _refuse(format('unknown scheme `%s` (known: %s)', t,
                (SELECT string_agg(p ->> 'name', ', ' ORDER BY o)
                 FROM jsonb_array_elements(_scheme_presets()) WITH ORDINALITY AS x(p, o))));
        END IF;
        RETURN s;
    END IF;
    -- What serde refuses in the core (the wording after the prefix is ours).
    why := CASE
        WHEN jsonb_typeof(s -> 'name') IS DISTINCT FROM 'string' THEN '`name` is a string'
        WHEN s ->> 'algorithm' IS NULL OR s ->> 'algorithm' NOT IN ('sha256', 'sha512') THEN '`algorithm` is sha256 or sha512'
        WHEN s ->> 'encoding' IS NULL OR s ->> 'encoding' NOT IN ('hex', 'base64') THEN '`encoding` is hex or base64'
        WHEN NOT (s -> 'key' = '"utf8"' OR jsonb_typeof(s #> '{key,base64,prefix}') = 'string') THEN '`key` is "utf8" or {"base64": {"prefix": ...}}'
        WHEN NOT (jsonb_typeof(s #> '{signature,header}') = 'string' OR jsonb_typeof(s #> '{signature,query}') = 'string') THEN '`signature` is {"header": NAME} or {"query": NAME}'
        WHEN jsonb_typeof(s -> 'message') IS DISTINCT FROM 'string' THEN '`message` is a template string'
        WHEN jsonb_typeof(s -> 'stronger') <> 'array' THEN '`stronger` is a list of versions'
        WHEN jsonb_typeof(s -> 'mismatch_status') IS DISTINCT FROM 'number' THEN 'missing field `mismatch_status`'
    END;
    IF why IS NOT NULL THEN
        PERFORM _refuse('scheme description does not parse: ' || why);
    END IF;
    -- What the core's Scheme::validate refuses, in its words.
    why := CASE
        WHEN s ->> 'name' = '' THEN 'name is empty'
        WHEN NOT (_is_token(s #>> '{signature,header}') OR _is_token(s #>> '{signature,query}'))
             OR (s -> 'id_header' <> 'null' AND NOT _is_token(s ->> 'id_header'))
             OR (s #> '{timestamp,header}' <> 'null' AND NOT _is_token(s #>> '{timestamp,header}'))
             THEN 'header and parameter names must be non-empty tokens'
        WHEN s #> '{format,list_separator}' = '""' THEN '`list_separator` is empty'
        WHEN s #> '{format,list_separator}' <> 'null' AND s #> '{format,tag}' = 'null' THEN 'a list of signatures needs a `tag`'
        WHEN s #> '{format,tag}' <> 'null' AND s #>> '{format,tag_separator}' = '' THEN 'a `tag` needs a `tag_separator`'
        WHEN NOT ((s ->> 'mismatch_status')::numeric >= 400 AND (s ->> 'mismatch_status')::numeric < 500) THEN '`mismatch_status` must be a 4xx code'
        WHEN s #> '{format,order}' <> 'null' AND (s #> '{format,list_separator}' = 'null' OR s -> 'asymmetric' <> 'null')
             THEN '`order` arranges the items of a list (`list_separator`), without `asymmetric`'
        WHEN s #> '{format,order}' <> 'null' AND _list_tags(s) IS DISTINCT FROM
             (SELECT array_agg(x ORDER BY x COLLATE "C") FROM jsonb_array_elements_text(s #> '{format,order}') x)
             THEN '`order` names each of the list''s tags once (timestamp, signed headers, versions, `tag`)'
    END;
    IF why IS NOT NULL THEN
        PERFORM _refuse(format('inconsistent scheme `%s`: %s', s ->> 'name', why));
    END IF;
    IF why IS NOT NULL THEN
        PERFORM _refuse(why);
    END IF;
    -- The template parses (each part is read again where the message is made).
    PERFORM count(*) FROM _template_parts(s ->> 'message');
    IF (SELECT count(*) FROM _template_parts(s ->> 'message') WHERE kind IN ('body', 'json')) <> 1 THEN
        PERFORM _refuse(format('inconsistent scheme `%s`: %s', s ->> 'name',
            'the template must use `{body}` or one `{json:FIELD}` exactly once'));
    END IF;
    RETURN s;
END
$$;

-- The bytes of `t` when it is canonical base64 (the standard alphabet,
-- padded, clean trailing bits: decoding and encoding again gives `t`),
-- else NULL: one text per value, as the core's decoder.
CREATE FUNCTION _canonical_base64(t text) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    b bytea;
BEGIN
    IF t !~ '^[A-Za-z0-9+/]*={0,2}$' OR length(t) % 4 <> 0 THEN
        RETURN NULL;
    END IF;
    b := decode(t, 'base64');
    RETURN CASE WHEN translate(encode(b, 'base64'), E'\n', '') = t THEN b END;
END
$$;

-- The HMAC keys of `secrets` (in order), at most max_signatures of them.
CREATE FUNCTION _hmac_keys(s jsonb, secrets text[]) RETURNS bytea[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    IF cardinality(secrets) > _core_limit('max_signatures') THEN
        PERFORM _refuse(format('at most %s secrets sign one message', _core_limit('max_signatures')));
    END IF;
    RETURN ARRAY(SELECT _hmac_key(s, x) FROM unnest(secrets) WITH ORDINALITY AS u(x, n) ORDER BY n);
END
$$;

-- The HMAC key for `secret` under the scheme's key rule (the core's
-- derive_key): the UTF-8 bytes, or the canonical base64 after the prefix.
CREATE FUNCTION _hmac_key(s jsonb, secret text) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    prefix text := s #>> '{key,base64,prefix}';
    rest text;
    key bytea;
BEGIN
    IF secret = '' THEN
        PERFORM _refuse('secret is empty');
    END IF;
    IF s -> 'asymmetric' <> 'null' AND (starts_with(secret, s #>> '{asymmetric,secret_prefix}')
                                       OR starts_with(secret, s #>> '{asymmetric,public_prefix}')) THEN
        PERFORM _refuse('ed25519 (' || (s #>> '{asymmetric,tag}') || ') keys need the native flavour '
                        'or the dispatcher: pgcrypto has no ed25519');
    END IF;
    IF length(secret) < (s ->> 'min_secret_len')::int THEN
        PERFORM _refuse(format('secret is shorter than the scheme''s minimum of %s characters',
                               s ->> 'min_secret_len'));
    END IF;
    IF prefix IS NULL THEN
        RETURN convert_to(secret, 'UTF8');
    END IF;
    rest := CASE WHEN starts_with(secret, prefix) THEN substr(secret, length(prefix) + 1) ELSE secret END;
    key := _canonical_base64(rest);
    IF key IS NULL THEN
        PERFORM _refuse('secret is not valid base64 after its `whsec_` prefix');
    END IF;
    IF length(key) = 0 THEN
        PERFORM _refuse('secret is empty');
    END IF;
    RETURN key;
END
$$;

-- The MAC of `message` under `key`, written in the scheme's encoding.
CREATE FUNCTION _mac_text(s jsonb, key bytea, message bytea) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT CASE s ->> 'encoding'
        WHEN 'hex' THEN encode(_hmac(message, key, s ->> 'algorithm'), 'hex')
        ELSE translate(encode(_hmac(message, key, s ->> 'algorithm'), 'base64'), E'\n', '')
    END
$$;

-- The signed message for a template: literals, the id, the timestamp's
-- text, the body (or a top-level string field of the JSON body) and the
-- named headers' text and their names (verification only: signing refuses
-- such schemes), as bytes.
CREATE FUNCTION _signed_message(template text, id text, ts text, body bytea,
                                header_text bytea DEFAULT ''::bytea,
                                header_names text DEFAULT '') RETURNS bytea
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    m bytea := ''::bytea;
    p record;
    doc json;
BEGIN
    FOR p IN SELECT * FROM _template_parts(template) LOOP
        IF p.kind = 'json' THEN
            BEGIN
                doc := convert_from(body, 'UTF8')::json;
            EXCEPTION WHEN OTHERS THEN
                PERFORM _refuse('body: body is not valid JSON');
            END;
            IF json_typeof(doc) <> 'object' OR json_typeof(doc -> p.value) IS DISTINCT FROM 'string' THEN
                PERFORM _refuse(format('body: body has no top-level string field `%s`', p.value));
            END IF;
        END IF;
        m := m || CASE p.kind
            WHEN 'literal' THEN convert_to(p.value, 'UTF8')
            WHEN 'id' THEN convert_to(coalesce(id, ''), 'UTF8')
            WHEN 'timestamp' THEN convert_to(ts, 'UTF8')
            WHEN 'body' THEN body
            WHEN 'json' THEN convert_to(doc ->> p.value, 'UTF8')
            WHEN 'headers' THEN header_text
            WHEN 'header_names' THEN convert_to(header_names, 'UTF8')
        END;
    END LOOP;
    RETURN m;
END
$$;

-- What a re-serializing scheme (json_fallback) sends for `body`: its
-- JSON.stringify form when it is JSON (refused where SQL cannot write that
-- exactly), else `body`; `body` for every other scheme.
CREATE FUNCTION _sent_body(s jsonb, body text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT CASE WHEN s -> 'json_fallback' = '"none"' OR s ->> 'message' ~ '\{json:' THEN body
                ELSE coalesce(_js_compact(body), body) END
$$;

-- For a fields fallback (fincra): the compact JSON of an object holding
-- only those top-level fields of the compact JSON object `compact`, in that
-- order; NULL when the scheme has none or the object holds none of them.
CREATE FUNCTION _projection(s jsonb, compact text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    doc json := compact::json;
BEGIN
    IF jsonb_typeof(s -> 'json_fallback') <> 'object' OR json_typeof(doc) <> 'object' THEN
        RETURN NULL;
    END IF;
    RETURN (SELECT '{' || string_agg(to_json(f)::text || ':' || (doc -> f)::text, ',' ORDER BY n) || '}'
            FROM jsonb_array_elements_text(s #> '{json_fallback,fields}') WITH ORDINALITY AS x(f, n)
            WHERE doc -> f IS NOT NULL);
END
$$;

-- The bytes `{body}` stands for: the sent body, or for a fields fallback
-- its projection (_projection) when there is one.
CREATE FUNCTION _signed_body(s jsonb, body bytea) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    compact text;
BEGIN
    IF s -> 'json_fallback' = '"none"' OR s ->> 'message' ~ '\{json:' THEN
        RETURN body;
    END IF;
    BEGIN
        compact := _js_compact(convert_from(body, 'UTF8'));
    EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character THEN
        RETURN body;  -- not UTF-8, so not JSON: signed as it is
    END;
    IF compact IS NULL THEN
        RETURN body;
    END IF;
    RETURN convert_to(coalesce(_projection(s, compact), compact), 'UTF8');
END
$$;

-- The signed headers (and a query-parameter signature) as the core's
-- Signer writes them: [timestamp item] then, per stronger version and per
-- secret, `{tag}{tag_separator}{mac}`, then one signature per secret under
-- the scheme's tag, list-separated; the id and timestamp headers beside.
CREATE FUNCTION _sign(scheme text, secrets text[], body bytea, id text, ts timestamptz) RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    s jsonb;
    f jsonb;
    sep text;
    keys bytea[];
    ms bigint;
    ts_text text := '';
    value text := '';
    v jsonb;
    k bytea;
    out jsonb := '{}'::jsonb;
BEGIN
    -- In the core's order: each secret, the scheme, the signer, then the message.
    secrets := ARRAY(SELECT x FROM unnest(secrets) x WHERE x IS NOT NULL);
    IF '' = ANY (secrets) THEN
        PERFORM _refuse('secret is empty');
    END IF;
    s := _scheme(scheme);
    f := s -> 'format';
    sep := coalesce(f ->> 'list_separator', '');
    IF cardinality(secrets) = 0 THEN
        PERFORM _refuse('no secret given');
    END IF;
    IF cardinality(secrets) > 1 AND f -> 'list_separator' = 'null' THEN
        PERFORM _refuse(format('scheme `%s` carries one signature; sign with one secret', s ->> 'name'));
    END IF;
    keys := _hmac_keys(s, secrets);
    IF s -> 'id_header' <> 'null' THEN
        id := coalesce(id, new_id('evt'));
        IF NOT _is_message_id(id) THEN
            PERFORM _refuse(format('message id must be 1-%s printable ASCII characters',
                                   _core_limit('max_message_id_len')));
        END IF;
    ELSE
        id := NULL;
    END IF;
    IF s -> 'timestamp' <> 'null' THEN
        IF ts IN ('infinity', '-infinity') THEN
            PERFORM _refuse('the signing timestamp must be finite (got infinity)');
        END IF;
        ms := floor(extract(epoch FROM coalesce(ts, clock_timestamp())) * 1000);
        IF ms < 0 THEN
            PERFORM _refuse('timestamp is before 1970 or needs more than 18 digits');
        END IF;
        ts_text := CASE s #>> '{timestamp,unit}' WHEN 'milliseconds' THEN ms ELSE ms / 1000 END::text;
    END IF;
    body := _signed_body(s, body);
    IF s -> 'signed_headers' <> 'null' THEN
        PERFORM _refuse('the scheme signs named headers: give at least one, each a header token, none twice');
    END IF;
    IF f -> 'timestamp_tag' <> 'null' THEN
        value := (f ->> 'timestamp_tag') || (f ->> 'tag_separator') || ts_text;
    END IF;
    FOR v IN SELECT x FROM jsonb_array_elements(s -> 'stronger') x LOOP
        FOREACH k IN ARRAY keys LOOP
            value := value || CASE WHEN value = '' THEN '' ELSE sep END
                     || (v ->> 'tag') || (f ->> 'tag_separator')
                     || _mac_text(s, k, _signed_message(v ->> 'message', id, ts_text, body));
        END LOOP;
    END LOOP;
    FOREACH k IN ARRAY keys LOOP
        value := value || CASE WHEN value = '' THEN '' ELSE sep END
                 || coalesce((f ->> 'tag') || (f ->> 'tag_separator'), '')
                 || _mac_text(s, k, _signed_message(s ->> 'message', id, ts_text, body));
    END LOOP;
    IF f -> 'order' <> 'null' THEN
        value := _in_order(value, sep, f ->> 'tag_separator', f -> 'order');
    END IF;
    out := jsonb_build_object(coalesce(s #>> '{signature,header}', s #>> '{signature,query}'), value);
    IF id IS NOT NULL THEN
        out := out || jsonb_build_object(s ->> 'id_header', id);
    END IF;
    IF s #> '{timestamp,header}' <> 'null' THEN
        out := out || jsonb_build_object(s #>> '{timestamp,header}', ts_text);
    END IF;
    RETURN out;
END
$$;

-- JSON.stringify(JSON.parse(body)) where SQL can write it exactly: the body
-- without whitespace outside strings, when that is what Node writes (every
-- number a decimal of at most 15 significant digits in Node's own form,
-- strings escaped as Node escapes them, no repeated key, no integer-like
-- key, which Node moves first). NULL for a body that is not JSON (sent and
-- signed as it is, as the core does); a refusal naming the reason for the
-- rest, which the dispatcher (the core's serializer) signs.
CREATE FUNCTION _js_compact(body text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    tok text;
    min text;
    keys int;
    why text;
BEGIN
    BEGIN
        PERFORM body::json;
    EXCEPTION WHEN OTHERS THEN
        RETURN NULL;
    END;
    -- Strings are kept whole; whitespace between tokens goes (the core's minify).
    min := regexp_replace(body, '("(?:[^"\\]|\\.)*")|[ \t\n\r]+', '\1', 'g');
    FOR tok IN SELECT m[1] FROM regexp_matches(min, '"(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*', 'g') m LOOP
        IF tok LIKE '"%' THEN
            IF tok ~ '\\([^"\\bfnrtu]|u(?!00[01][0-9a-f]))' THEN
                why := format('the string %s is escaped otherwise than JSON.stringify writes it', left(tok, 40));
            END IF;
        ELSIF tok !~ '^-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$' OR tok ~ '^-0(\.0*)?$'
              OR (tok !~ '\.' AND length(ltrim(tok, '-')) > 15)
              OR length(ltrim(replace(ltrim(tok, '-'), '.', ''), '0')) > 15
              OR (tok ~ '\.' AND abs(tok::numeric) < 0.000001) THEN
            why := format('the number %s is written otherwise by JSON.stringify (or loses digits as a double)', tok);
        END IF;
        EXIT WHEN why IS NOT NULL;
    END LOOP;
    IF why IS NULL AND min ~ '[{,]"(0|[1-9][0-9]{0,9})":' THEN
        why := 'an object has an integer-like key, which JSON.stringify moves first';
    END IF;
    IF why IS NULL THEN
        SELECT coalesce(sum((SELECT count(*) FROM jsonb_object_keys(v))), 0) INTO keys
        FROM jsonb_path_query(min::jsonb, 'strict $.**') v WHERE jsonb_typeof(v) = 'object';
        IF keys <> (SELECT count(*) FROM regexp_matches(min, '"(?:[^"\\]|\\.)*":', 'g')) THEN
            why := 'an object repeats a key';
        END IF;
    END IF;
    IF why IS NOT NULL THEN
        PERFORM _refuse('cannot write JSON.stringify(JSON.parse(body)) exactly in SQL: ' || why
                        || '; the portable flavour''s dispatcher signs such deliveries with the core '
                        '(or use the native flavour)');
    END IF;
    RETURN min;
END
$$;

-- The native flavour's functions, same names, signatures and NULL rules --------

CREATE FUNCTION webhook_sign(scheme text, secret text, body text, id text DEFAULT NULL,
                             ts timestamptz DEFAULT now()) RETURNS jsonb
LANGUAGE sql VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT CASE WHEN scheme IS NOT NULL AND secret IS NOT NULL AND body IS NOT NULL
                THEN _sign(scheme, ARRAY[secret], convert_to(body, 'UTF8'), id, ts) END
$$;

CREATE FUNCTION webhook_sign(scheme text, secret text, body bytea, id text DEFAULT NULL,
                             ts timestamptz DEFAULT now()) RETURNS jsonb
LANGUAGE sql VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT CASE WHEN scheme IS NOT NULL AND secret IS NOT NULL AND body IS NOT NULL
                THEN _sign(scheme, ARRAY[secret], body, id, ts) END
$$;

CREATE FUNCTION webhook_sign(scheme text, secrets text[], body text, id text DEFAULT NULL,
                             ts timestamptz DEFAULT now()) RETURNS jsonb
LANGUAGE sql VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT CASE WHEN scheme IS NOT NULL AND secrets IS NOT NULL AND body IS NOT NULL
                THEN _sign(scheme, secrets, convert_to(body, 'UTF8'), id, ts) END
$$;

-- (The input `body` and the output column share a name, as in the native
-- signature: the SQL body reads the arguments by position.)
CREATE FUNCTION webhook_sign_message(scheme text, secret text, body text, id text DEFAULT NULL,
                                     ts timestamptz DEFAULT now())
RETURNS TABLE (body text, headers jsonb)
LANGUAGE sql VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT _sent_body(_scheme($1), $3), _sign($1, ARRAY[$2], convert_to($3, 'UTF8'), $4, $5)
    WHERE $1 IS NOT NULL AND $2 IS NOT NULL AND $3 IS NOT NULL
$$;

CREATE FUNCTION webhook_body(scheme text, body text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$ SELECT _sent_body(_scheme(scheme), body) $$;

-- The body the outbox stores for an endpoint of `scheme` (the fan-out in
-- sql/hookseal.sql): webhook_body's form where it can be proven, else the
-- event body as it is. A re-serializing scheme's JSON.stringify form that
-- SQL cannot prove is then written by the dispatcher's signer (the core),
-- which sends the form it signs: one endpoint's scheme never refuses a
-- webhook_send.
CREATE FUNCTION _delivery_body(scheme text, payload text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    s jsonb := _scheme(scheme);
BEGIN
    IF s -> 'json_fallback' = '"none"' OR s ->> 'message' ~ '\{json:' THEN
        RETURN payload;
    END IF;
    BEGIN
        RETURN coalesce(_js_compact(payload), payload);
    EXCEPTION WHEN invalid_parameter_value THEN
        RETURN payload;
    END;
END
$$;

CREATE FUNCTION secret_hash(secret text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    IF secret = '' THEN
        PERFORM _refuse('secret is empty');
    END IF;
    RETURN encode(sha256(convert_to(secret, 'UTF8')), 'hex');
END
$$;

-- `n` characters of the nanoid alphabet (64 letters: each random byte's
-- low six bits pick one, unbiased), as the core's nanoid.
CREATE FUNCTION _nanoid(n integer) RETURNS text
LANGUAGE sql VOLATILE STRICT PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT string_agg(substr('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-',
                             (get_byte(r.b, i) & 63) + 1, 1), '' ORDER BY i)
    FROM (SELECT _random_bytes(n) AS b) r, generate_series(0, n - 1) i
$$;

-- A fresh id: the kind's prefix and id_random_len nanoid characters.
CREATE FUNCTION new_id(kind text) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    IF kind NOT IN ('evt', 'wh', 'app', 'secret') THEN
        PERFORM _refuse('unknown id kind: evt, wh, app or secret');
    END IF;
    RETURN kind || '_' || _nanoid(_core_limit('id_random_len'));
END
$$;

-- A new secret fit for `scheme` (internal: create_secret returns it once),
-- as the core's Scheme::new_secret: the prefix and base64 of
-- default_secret_bytes random bytes when the key is base64 (`standard`),
-- else the prefix and id_random_len nanoid characters.
CREATE FUNCTION _new_secret(scheme text) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    IF _scheme(scheme) #> '{key,base64}' IS NOT NULL THEN
        RETURN _secret_prefix()
               || translate(encode(_random_bytes(_core_limit('default_secret_bytes')), 'base64'), E'\n', '');
    END IF;
    RETURN _secret_prefix() || _nanoid(_core_limit('id_random_len'));
END
$$;

-- The `native` delivery body {"id","type","timestamp","data"} as compact
-- JSON, keys in that order, `data` as jsonb writes it without whitespace
-- (the core's event_body and minify).
CREATE FUNCTION event_body(id text, event_type text, created_ms bigint, data jsonb) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT '{"id":' || to_json(id)::text || ',"type":' || to_json(event_type)::text
           || ',"timestamp":' || created_ms || ',"data":'
           || regexp_replace(data::text, '("(?:[^"\\]|\\.)*")|[ \t\n\r]+', '\1', 'g') || '}'
$$;

CREATE FUNCTION _message_id(id text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    IF id IS NULL OR NOT _is_message_id(id) THEN
        PERFORM _refuse(format('event id must be 1 to %s printable ASCII characters (no spaces)',
                               _core_limit('max_message_id_len')));
    END IF;
    RETURN id;
END
$$;

-- Why an endpoint cannot deliver with `scheme`, or NULL: its signature
-- travels in a header and signs no named headers (the native rule).
CREATE FUNCTION _endpoint_scheme_error(scheme text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    s jsonb;
BEGIN
    BEGIN
        s := _scheme(scheme);
    EXCEPTION WHEN invalid_parameter_value THEN
        RETURN regexp_replace(SQLERRM, '^hookseal: ', '');
    END;
    IF s #> '{signature,header}' IS NULL THEN
        RETURN format('`%s` signs a URL (a query parameter), not a delivered request: endpoints '
                      'need a scheme whose signature is a header', s ->> 'name');
    END IF;
    IF s -> 'signed_headers' <> 'null' THEN
        RETURN format('`%s` signs named request headers, and an outbox delivery has none of its '
                      'own to sign', s ->> 'name');
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION scheme_exists(name text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$ SELECT _endpoint_scheme_error(name) IS NULL $$;

-- The largest delivery body webhook_send stores: hookseal.max_body_bytes
-- when set (a custom setting, `ALTER DATABASE ... SET` works without the
-- library; bytes, or PostgreSQL's memory units as the native setting shows
-- them: 256kB, 1MB), else the receivers' default.
CREATE FUNCTION _max_body_bytes() RETURNS integer
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    v text := btrim(coalesce(current_setting('hookseal.max_body_bytes', true), ''));
    m text[] := regexp_match(v, '^([0-9]{1,10})\s*(B|kB|MB|GB)?$');
    bytes bigint;
BEGIN
    IF v = '' THEN
        RETURN _core_limit('max_body_bytes');
    END IF;
    bytes := m[1]::bigint * CASE m[2] WHEN 'kB' THEN 1024 WHEN 'MB' THEN 1048576
                                      WHEN 'GB' THEN 1073741824 ELSE 1 END;
    IF bytes IS NULL OR bytes > 2147483647 THEN
        RAISE EXCEPTION 'hookseal: hookseal.max_body_bytes is %, not a size (bytes, or with kB, MB, GB)',
            quote_literal(v) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN bytes;
END
$$;
