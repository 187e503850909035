-- hookseal, portable flavour: verification in PL/pgSQL on pgcrypto.
--
-- The native webhook_verify / webhook_verify_reason, rule for rule in the
-- core's order (crates/hookseal/src/verify.rs: the body's size, the
-- signatures, the message id, the timestamp and its window, the strongest
-- version present, then the match: the raw body, then the re-serialized
-- one), with the same codes and reasons. tests/portable/signing.py runs
-- both flavours on the same requests (the attack and named-header vectors
-- among them).
-- What differs: v1a (ed25519) signatures are not checked (pgcrypto has
-- none): a public key among the secrets is refused, v1a items are read and
-- skipped; and a JSON body whose JSON.stringify form SQL cannot write
-- exactly (see _js_compact) is refused for the second chance of the
-- re-serializing schemes, x-signature and fincra.
-- MACs are compared as HMACs under a fresh random key (equal MACs give
-- equal HMACs; unequal ones reveal nothing through the time a bytea
-- comparison takes), the SQL stand-in for the core's constant-time
-- comparison.

-- Header (name, value) pairs from the JSON object given: a string, or an
-- array of strings for a repeated header. NULL pairs and a reason for
-- anything else, as the native functions word it.
CREATE FUNCTION _header_pairs(headers jsonb, OUT names text[], OUT vals text[], OUT reason text)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    k text;
    v jsonb;
    i jsonb;
    kind text;
BEGIN
    names := '{}'; vals := '{}';
    IF headers IS NULL OR jsonb_typeof(headers) = 'null' THEN
        RETURN;
    END IF;
    IF jsonb_typeof(headers) <> 'object' THEN
        names := NULL; vals := NULL;
        reason := 'bad_headers: headers must be a JSON object of strings';
        RETURN;
    END IF;
    FOR k, v IN SELECT * FROM jsonb_each(headers) ORDER BY key COLLATE "C" LOOP
        kind := CASE jsonb_typeof(v) WHEN 'null' THEN 'null' WHEN 'boolean' THEN 'a boolean'
                WHEN 'number' THEN 'a number' WHEN 'object' THEN 'an object' ELSE NULL END;
        IF jsonb_typeof(v) = 'string' THEN
            names := names || lower(k); vals := vals || (v #>> '{}');
        ELSIF jsonb_typeof(v) = 'array' THEN
            FOR i IN SELECT * FROM jsonb_array_elements(v) LOOP
                IF jsonb_typeof(i) <> 'string' THEN
                    kind := 'an array holding a non-string';
                    EXIT;
                END IF;
                names := names || lower(k); vals := vals || (i #>> '{}');
            END LOOP;
        END IF;
        IF kind IS NOT NULL THEN
            names := NULL; vals := NULL;
            reason := format('bad_headers: header `%s` is %s; header values are strings (or arrays of strings)', k, kind);
            RETURN;
        END IF;
    END LOOP;
END
$$;

-- The values of header `name` (any case), each trimmed of spaces and tabs
-- unless longer than max_value_len (then refused as too long later).
CREATE FUNCTION _header_values(names text[], vals text[], name text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT coalesce(array_agg(CASE WHEN octet_length(v) > _core_limit('max_value_len') THEN v
                                   ELSE btrim(v, E' \t') END ORDER BY n), '{}')
    FROM unnest(names, vals) WITH ORDINALITY AS h(k, v, n)
    WHERE k = lower(name)
$$;

-- One signature value into the candidates (text), whether each is an
-- ed25519 one, its version (an index into `stronger`, or its length for
-- the base tag), the timestamp item and the signed-headers item; the
-- refusal's reason when the value is unusable.
CREATE FUNCTION _parse_signature_value(s jsonb, v text, INOUT sigs text[], INOUT asym boolean[],
                                       INOUT ver integer[], INOUT ts text, INOUT named text,
                                       OUT reason text)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    f jsonb := s -> 'format';
    base int := jsonb_array_length(s -> 'stronger');
    tag text := f ->> 'tag';
    tsep text := f ->> 'tag_separator';
    item text;
    t text;
    val text;
    items int := 0;
    at int;
    stronger int;
BEGIN
    IF v = '' THEN
        reason := 'empty'; RETURN;
    END IF;
    IF octet_length(v) > _core_limit('max_value_len') THEN
        reason := 'value is too long'; RETURN;
    END IF;
    IF f -> 'list_separator' = 'null' THEN
        IF tag IS NOT NULL THEN
            IF NOT starts_with(v, tag || tsep) THEN
                reason := 'missing the signature''s version prefix'; RETURN;
            END IF;
            v := substr(v, length(tag || tsep) + 1);
        END IF;
        sigs := sigs || v; asym := asym || false; ver := ver || base;
        RETURN;
    END IF;
    FOREACH item IN ARRAY string_to_array(v, f ->> 'list_separator') LOOP
        CONTINUE WHEN item = '';
        items := items + 1;
        at := strpos(item, tsep);
        CONTINUE WHEN at = 0;  -- not a tagged item: skipped like an unknown version
        t := substr(item, 1, at - 1);
        val := substr(item, at + length(tsep));
        SELECT n - 1 INTO stronger FROM jsonb_array_elements(s -> 'stronger') WITH ORDINALITY AS x(e, n)
        WHERE e ->> 'tag' = t ORDER BY n LIMIT 1;
        IF t = coalesce(tag, '') OR t = s #>> '{asymmetric,tag}' OR stronger IS NOT NULL THEN
            IF cardinality(sigs) = _core_limit('max_signatures') THEN
                reason := 'too many signatures'; RETURN;
            END IF;
            sigs := sigs || val;
            asym := asym || coalesce(t <> coalesce(tag, '') AND t = s #>> '{asymmetric,tag}', false);
            ver := ver || CASE WHEN t = coalesce(tag, '') THEN base ELSE coalesce(stronger, base) END;
        ELSIF t = s #>> '{signed_headers,tag}' THEN
            IF named IS NOT NULL THEN
                reason := 'signed-headers item is repeated'; RETURN;
            END IF;
            named := val;
        ELSIF t = f ->> 'timestamp_tag' THEN
            IF ts IS NOT NULL THEN
                reason := 'timestamp item is repeated'; RETURN;
            END IF;
            ts := val;
        END IF;
    END LOOP;
    IF items = 0 THEN
        reason := 'no signature items';
    END IF;
END
$$;

-- A candidate signature's bytes, when it is canonical in the scheme's
-- encoding (lowercase hex; padded base64 with clean trailing bits), else NULL.
CREATE FUNCTION _decode_signature(s jsonb, c text) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    IF s ->> 'encoding' = 'hex' THEN
        RETURN CASE WHEN c ~ '^([0-9a-f]{2})*$' THEN decode(c, 'hex') END;
    END IF;
    RETURN _canonical_base64(c);
END
$$;

-- The index (1-based) of the first key whose MAC over the template's
-- message matches a non-ed25519 candidate, or NULL.
CREATE FUNCTION _match_any(s jsonb, template text, keys bytea[], sigs text[], asym boolean[],
                           id text, ts text, header_text bytea, header_names text, body bytea)
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    blind bytea := _random_bytes(32);
    msg bytea;
    mac bytea;
    c bytea;
BEGIN
    msg := _signed_message(template, id, ts, body, header_text, header_names);
    FOR k IN 1 .. cardinality(keys) LOOP
        mac := _hmac(_hmac(msg, keys[k], s ->> 'algorithm'), blind, 'sha256');
        FOR i IN 1 .. coalesce(cardinality(sigs), 0) LOOP
            CONTINUE WHEN asym[i];
            c := _decode_signature(s, sigs[i]);
            IF c IS NOT NULL AND _hmac(c, blind, 'sha256') = mac THEN
                RETURN k;
            END IF;
        END LOOP;
    END LOOP;
    RETURN NULL;
END
$$;

-- 'ok', or '<code>: <reason>' for the first rule the request fails
-- (the core's verify_request). Bad setup (an unknown scheme, an unusable
-- secret) raises, as natively.
CREATE FUNCTION _verify(scheme text, secrets text[], body bytea, headers jsonb,
                        tolerance_s integer, now timestamptz, url text) RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    s jsonb;
    h record;
    keys bytea[];
    names jsonb;        -- the spelling used: {"signature", "id", "timestamp"}
    lines text[];
    sig_name text;
    p record;
    sigs text[] := '{}'; asym boolean[] := '{}'; ver integer[] := '{}';
    ts text; named text; why text;
    id text := '';
    t_ms numeric;
    strongest int;
    template text;
    header_text bytea := ''::bytea;
    header_names text := '';
    hit int;
    sent text;
    projected bytea;
BEGIN
    IF scheme IS NULL OR secrets IS NULL OR body IS NULL OR now IS NULL THEN
        RETURN 'null_argument: scheme, secrets, body and now must not be NULL';
    END IF;
    secrets := ARRAY(SELECT x FROM unnest(secrets) x WHERE x IS NOT NULL);
    IF cardinality(secrets) = 0 THEN
        RETURN 'no_secret: no non-NULL secret given';
    END IF;
    IF now IN ('infinity', '-infinity') THEN
        RETURN 'bad_now: now must be a finite timestamp';
    END IF;
    IF tolerance_s < 0 THEN
        RETURN format('bad_tolerance: tolerance_s must be 0 or more (got %s)', tolerance_s);
    END IF;
    tolerance_s := coalesce(tolerance_s, _core_limit('default_tolerance_s'));
    h := _header_pairs(headers);
    IF h.reason IS NOT NULL THEN
        RETURN h.reason;
    END IF;
    -- The verifier: each secret, the scheme, the keys (public keys allowed).
    IF '' = ANY (secrets) THEN
        PERFORM _refuse('secret is empty');
    END IF;
    s := _scheme(scheme);
    keys := _hmac_keys(s, secrets);
    IF (headers IS NULL OR jsonb_typeof(headers) = 'null') AND s #> '{signature,query}' IS NULL THEN
        RETURN 'bad_headers: headers must be a JSON object of strings';
    END IF;
    IF octet_length(body) > _max_body_bytes() THEN
        RETURN format('body_too_large: body is larger than %s bytes', _max_body_bytes());
    END IF;
    -- The signatures: the scheme's header, else its alias spelling, else the query parameter.
    names := jsonb_build_object('signature', s #>> '{signature,header}', 'id', s ->> 'id_header',
                                'timestamp', s #>> '{timestamp,header}');
    IF s #> '{signature,header}' IS NOT NULL THEN
        lines := _header_values(h.names, h.vals, names ->> 'signature');
        IF cardinality(lines) = 0 AND s -> 'header_aliases' <> 'null' THEN
            lines := _header_values(h.names, h.vals, s #>> '{header_aliases,signature}');
            IF cardinality(lines) > 0 THEN
                names := jsonb_build_object('signature', s #>> '{header_aliases,signature}',
                                            'id', s #>> '{header_aliases,id}',
                                            'timestamp', s #>> '{header_aliases,timestamp}');
            END IF;
        END IF;
        IF cardinality(lines) = 0 THEN
            RETURN format('missing_header: missing header `%s`', s #>> '{signature,header}');
        END IF;
        sig_name := names ->> 'signature';
        FOR i IN 1 .. cardinality(lines) LOOP
            p := _parse_signature_value(s, lines[i], sigs, asym, ver, ts, named);
            sigs := p.sigs; asym := p.asym; ver := p.ver; ts := p.ts; named := p.named;
            why := coalesce(why, p.reason);
        END LOOP;
        IF cardinality(lines) > 1 AND s #> '{format,list_separator}' = 'null' THEN
            why := 'header is repeated';
        END IF;
        IF why IS NOT NULL THEN
            RETURN format('malformed_header: malformed header `%s`: %s', sig_name, why);
        END IF;
    ELSE
        sig_name := s #>> '{signature,query}';
        why := _query_signature(url, sig_name);
        IF why !~ '^value:' THEN
            RETURN why;
        END IF;
        p := _parse_signature_value(s, substr(why, 7), sigs, asym, ver, ts, named);
        sigs := p.sigs; asym := p.asym; ver := p.ver; ts := p.ts; named := p.named;
        IF p.reason IS NOT NULL THEN
            RETURN format('malformed_query_parameter: malformed query parameter `%s`: %s', sig_name, p.reason);
        END IF;
    END IF;
    -- The message id.
    IF s -> 'id_header' <> 'null' THEN
        lines := _header_values(h.names, h.vals, names ->> 'id');
        why := CASE WHEN cardinality(lines) = 0 THEN NULL
                    WHEN cardinality(lines) > 1 THEN 'header is repeated'
                    WHEN lines[1] = '' THEN 'empty'
                    WHEN octet_length(lines[1]) > _core_limit('max_message_id_len') THEN 'too long'
                    WHEN NOT _is_message_id(lines[1]) THEN 'not printable ASCII' END;
        IF cardinality(lines) = 0 THEN
            RETURN format('missing_header: missing header `%s`', names ->> 'id');
        ELSIF why IS NOT NULL THEN
            RETURN format('malformed_header: malformed header `%s`: %s', names ->> 'id', why);
        END IF;
        id := lines[1];
    END IF;
    -- The timestamp and its window.
    IF s -> 'timestamp' <> 'null' THEN
        IF s #> '{timestamp,header}' <> 'null' THEN
            lines := _header_values(h.names, h.vals, names ->> 'timestamp');
            IF cardinality(lines) = 0 THEN
                RETURN format('missing_header: missing header `%s`', names ->> 'timestamp');
            ELSIF cardinality(lines) > 1 THEN
                RETURN format('malformed_header: malformed header `%s`: header is repeated', names ->> 'timestamp');
            END IF;
            ts := lines[1];
            why := names ->> 'timestamp';
        ELSE
            IF ts IS NULL THEN
                RETURN format('malformed_header: malformed header `%s`: no timestamp item', sig_name);
            END IF;
            why := sig_name;
        END IF;
        IF ts !~ '^[0-9]{1,18}$' THEN
            RETURN format('malformed_header: malformed header `%s`: timestamp is not a whole number', why);
        END IF;
        t_ms := ts::numeric * CASE s #>> '{timestamp,unit}' WHEN 'seconds' THEN 1000 ELSE 1 END;
        why := _window(t_ms, floor(extract(epoch FROM now) * 1000), tolerance_s);
        IF why IS NOT NULL THEN
            RETURN why;
        END IF;
    ELSE
        ts := '';
    END IF;
    -- Only the strongest version present is checked (and the ed25519 ones).
    SELECT min(v) INTO strongest FROM unnest(ver, asym) AS x(v, a) WHERE NOT a;
    strongest := coalesce(strongest, jsonb_array_length(s -> 'stronger'));
    template := coalesce(s #>> ARRAY['stronger', strongest::text, 'message'], s ->> 'message');
    SELECT coalesce(array_agg(g ORDER BY n), '{}'), coalesce(array_agg(a ORDER BY n), '{}')
    INTO sigs, asym
    FROM unnest(sigs, asym, ver) WITH ORDINALITY AS x(g, a, v, n) WHERE a OR v = strongest;
    IF template ~ '\{(headers|header_names)\}' THEN
        why := _signed_header_text(s, h.names, h.vals, named, sig_name);
        IF why !~ '^text:' THEN
            RETURN why;
        END IF;
        header_text := convert_to(substr(why, 6), 'UTF8');
        header_names := lower(named);  -- tokens and separators: the names as written, lower case
    END IF;
    IF template ~ '\{json:' THEN
        why := _json_field_reason(template, body);
        IF why IS NOT NULL THEN
            RETURN 'body_not_json: body: ' || why;
        END IF;
    END IF;
    hit := _match_any(s, template, keys, sigs, asym, id, ts, header_text, header_names, body);
    IF hit IS NOT NULL THEN
        RETURN 'ok';
    END IF;
    -- Nothing matched: signatures that cannot be a MAC at all are malformed.
    IF cardinality(sigs) > 0 AND NOT EXISTS (
        SELECT 1 FROM unnest(sigs, asym) AS x(g, a)
        WHERE octet_length(_decode_signature(s, g)) = CASE WHEN a THEN 64
              WHEN s ->> 'algorithm' = 'sha512' THEN 64 ELSE 32 END) THEN
        why := CASE s ->> 'encoding' WHEN 'hex' THEN 'signature is not lowercase hex of the MAC''s length'
                                     ELSE 'signature is not base64 of the MAC''s length' END;
        RETURN CASE WHEN s #> '{signature,header}' IS NOT NULL
                    THEN format('malformed_header: malformed header `%s`: %s', s #>> '{signature,header}', why)
                    ELSE format('malformed_query_parameter: malformed query parameter `%s`: %s', sig_name, why) END;
    END IF;
    -- Second chance: the body as a re-serializing sender signs it.
    IF cardinality(sigs) > 0 AND s -> 'json_fallback' <> '"none"' AND template !~ '\{json:' THEN
        BEGIN
            sent := convert_from(body, 'UTF8');
        EXCEPTION WHEN OTHERS THEN
            sent := NULL;
        END;
        sent := _js_compact(sent);
        IF sent IS NOT NULL AND convert_to(sent, 'UTF8') <> body
           AND _match_any(s, template, keys, sigs, asym, id, ts, header_text, header_names, convert_to(sent, 'UTF8')) IS NOT NULL THEN
            RETURN 'ok';
        END IF;
        projected := convert_to(_projection(s, sent), 'UTF8');
        IF projected IS NOT NULL
           AND _match_any(s, template, keys, sigs, asym, id, ts, header_text, header_names, projected) IS NOT NULL THEN
            RETURN 'ok';
        END IF;
    END IF;
    RETURN 'no_matching_signature: no signature matches';
END
$$;

-- The window: NULL, or why `t_ms` is further than `tolerance_s` from `now_ms`.
CREATE FUNCTION _window(t_ms numeric, now_ms numeric, tolerance_s integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT CASE
        WHEN t_ms - now_ms < -tolerance_s * 1000::numeric THEN format(
            'timestamp_too_old: timestamp is %s old, more than the %s s tolerance',
            CASE WHEN trunc((now_ms - t_ms) / 1000) > tolerance_s THEN trunc((now_ms - t_ms) / 1000) || ' s'
                 ELSE 'over ' || tolerance_s || ' s' END, tolerance_s)
        WHEN t_ms - now_ms > tolerance_s * 1000::numeric THEN format(
            'timestamp_too_new: timestamp is %s in the future, more than the %s s tolerance',
            CASE WHEN trunc((t_ms - now_ms) / 1000) > tolerance_s THEN trunc((t_ms - now_ms) / 1000) || ' s'
                 ELSE 'over ' || tolerance_s || ' s' END, tolerance_s)
    END
$$;

-- The signature query parameter `name` of a query string or whole URL:
-- 'value:<percent-decoded value>', or the refusal.
CREATE FUNCTION _query_signature(url text, name text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    q text := url;
    pair text;
    found text;
    b bytea := ''::bytea;
    i int := 1;
    hex text;
BEGIN
    IF q IS NULL THEN
        RETURN format('missing_query_parameter: missing query parameter `%s`', name);
    END IF;
    IF strpos(q, '?') > 0 THEN
        q := substr(q, strpos(q, '?') + 1);
    END IF;
    q := split_part(q, '#', 1);
    FOREACH pair IN ARRAY string_to_array(q, '&') LOOP
        IF split_part(pair, '=', 1) = name THEN
            IF found IS NOT NULL THEN
                RETURN format('malformed_query_parameter: malformed query parameter `%s`: parameter is repeated', name);
            END IF;
            found := CASE WHEN strpos(pair, '=') > 0 THEN substr(pair, strpos(pair, '=') + 1) ELSE '' END;
        END IF;
    END LOOP;
    IF found IS NULL THEN
        RETURN format('missing_query_parameter: missing query parameter `%s`', name);
    END IF;
    IF octet_length(found) > _core_limit('max_value_len') THEN
        RETURN format('malformed_query_parameter: malformed query parameter `%s`: value is too long', name);
    END IF;
    WHILE i <= length(found) LOOP
        IF substr(found, i, 1) = '%' THEN
            hex := substr(found, i + 1, 2);
            IF hex !~ '^[0-9A-Fa-f]{2}$' THEN
                RETURN format('malformed_query_parameter: malformed query parameter `%s`: bad percent-escape', name);
            END IF;
            b := b || decode(lower(hex), 'hex');
            i := i + 3;
        ELSE
            b := b || convert_to(substr(found, i, 1), 'UTF8');
            i := i + 1;
        END IF;
    END LOOP;
    BEGIN
        RETURN 'value:' || convert_from(b, 'UTF8');
    EXCEPTION WHEN OTHERS THEN
        RETURN format('malformed_query_parameter: malformed query parameter `%s`: not UTF-8', name);
    END;
END
$$;

-- One named header written as `each` says: `{name}`, `{value}`, and `{{`
-- `}}` for braces (the core's HeaderItem; anything else in `each` is
-- refused by the core, and written as it is here).
CREATE FUNCTION _header_item(each text, name text, value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT coalesce(string_agg(CASE m[1] WHEN '{{' THEN '{' WHEN '}}' THEN '}' WHEN '{name}' THEN name
                                         WHEN '{value}' THEN value ELSE m[1] END, '' ORDER BY k), '')
    FROM regexp_matches(each, '(\{\{|\}\}|\{name\}|\{value\}|[^{}]+|[{}])', 'g') WITH ORDINALITY AS x(m, k)
$$;

-- The `{headers}` text of the headers the signature names, in its order,
-- each written as `signed_headers.each` says and joined by its `join`:
-- 'text:<...>', or the refusal.
CREATE FUNCTION _signed_header_text(s jsonb, names text[], vals text[], named text, sig_name text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    n text;
    v text[];
    out text := '';
    first boolean := true;
BEGIN
    IF named IS NULL THEN
        RETURN format('malformed_header: malformed header `%s`: no signed-headers item', sig_name);
    END IF;
    FOREACH n IN ARRAY string_to_array(named, s #>> '{signed_headers,separator}') LOOP
        IF NOT _is_token(n) THEN
            RETURN format('malformed_header: malformed header `%s`: a signed header name is not a token', sig_name);
        END IF;
        v := _header_values(names, vals, n);
        IF cardinality(v) = 0 THEN
            RETURN format('missing_signed_header: missing header `%s`, which the signature names', n);
        ELSIF cardinality(v) > 1 THEN
            RETURN format('malformed_header: malformed header `%s`: header is repeated', n);
        END IF;
        out := out || CASE WHEN first THEN '' ELSE s #>> '{signed_headers,join}' END
               || _header_item(s #>> '{signed_headers,each}', lower(n), btrim(v[1], E' \t'));
        first := false;
    END LOOP;
    RETURN 'text:' || out;
END
$$;

-- NULL, or why the body has no top-level string field for the template's
-- `{json:FIELD}`.
CREATE FUNCTION _json_field_reason(template text, body bytea) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    field text := (SELECT value FROM _template_parts(template) WHERE kind = 'json' LIMIT 1);
    doc json;
BEGIN
    BEGIN
        doc := convert_from(body, 'UTF8')::json;
    EXCEPTION WHEN OTHERS THEN
        RETURN 'body is not valid JSON';
    END;
    IF json_typeof(doc) <> 'object' OR json_typeof(doc -> field) IS DISTINCT FROM 'string' THEN
        RETURN format('body has no top-level string field `%s`', field);
    END IF;
    RETURN NULL;
END
$$;

-- The native flavour's functions, same names, signatures and NULL rules --------

CREATE FUNCTION webhook_verify_reason(scheme text, secrets text[], body text, headers jsonb,
                                      tolerance_s integer DEFAULT 300, now timestamptz DEFAULT now(),
                                      url text DEFAULT NULL) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$ SELECT _verify(scheme, secrets, convert_to(body, 'UTF8'), headers, tolerance_s, now, url) $$;

CREATE FUNCTION webhook_verify_reason(scheme text, secrets text[], body bytea, headers jsonb,
                                      tolerance_s integer DEFAULT 300, now timestamptz DEFAULT now(),
                                      url text DEFAULT NULL) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$ SELECT _verify(scheme, secrets, body, headers, tolerance_s, now, url) $$;

CREATE FUNCTION webhook_verify(scheme text, secrets text[], body text, headers jsonb,
                               tolerance_s integer DEFAULT 300, now timestamptz DEFAULT now(),
                               url text DEFAULT NULL) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$ SELECT _verify(scheme, secrets, convert_to(body, 'UTF8'), headers, tolerance_s, now, url) = 'ok' $$;

CREATE FUNCTION webhook_verify(scheme text, secrets text[], body bytea, headers jsonb,
                               tolerance_s integer DEFAULT 300, now timestamptz DEFAULT now(),
                               url text DEFAULT NULL) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$ SELECT _verify(scheme, secrets, body, headers, tolerance_s, now, url) = 'ok' $$;
