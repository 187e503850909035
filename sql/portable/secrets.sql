-- hookseal, portable flavour: sealed secrets, and the native functions
-- this flavour cannot have.
--
-- The database seals but never opens. Every secret it makes
-- (create_endpoint, create_secret, rotate_secret in sql/hookseal.sql) is
-- stored sealed with pgcrypto's pgp_pub_encrypt to the newest public key
-- in sealing_keys; the opening (private) key lives only with the
-- dispatchers and the Lambda (hookseal keygen --sealing-key makes the
-- pair). The stored form is `pgp1.` and the base64 of the OpenPGP message
-- (`pgp1k.` for a v1a signing key, made and sealed outside the database by
-- hookseal keypair and stored by add_sealed_keypair(): pgcrypto has no ed25519),
-- which the core's sealing module opens. So the fan-out stores rows
-- unsigned and claim() hands the worker the sealed secrets that sign now;
-- the dispatcher signs each attempt (sql/hookseal.sql asks _flavour()).
--
-- Same names and signatures as the native flavour's Rust functions, so
-- that sql/hookseal.sql is one script for both; the ones that would need
-- a secret in the clear raise feature_not_supported and say what to do.

-- Which flavour this is: sql/hookseal.sql branches on it where the
-- flavours differ (signing in the database or in the dispatcher). An
-- immutable SQL function, inlined and folded where it is called.
CREATE FUNCTION _flavour() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 'portable'::text $$;

-- The error of a native-only function. Never given a secret.
CREATE FUNCTION _native_only(what text, instead text) RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'hookseal: % needs the native flavour', what
        USING ERRCODE = 'feature_not_supported', HINT = instead;
END
$$;

-- The OpenPGP key id (16 hex digits, upper case, as pgp_key_id writes
-- it) of an armored public key fit for sealing; refuses anything else by
-- name (a private key above all: it must never reach the database).
CREATE FUNCTION _sealing_key_id(public_key text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    key bytea;
    id text;
BEGIN
    IF public_key IS NULL OR public_key !~ '-----BEGIN PGP PUBLIC KEY BLOCK-----' THEN
        RAISE EXCEPTION 'hookseal: a sealing key is an armored OpenPGP public key '
                        '(-----BEGIN PGP PUBLIC KEY BLOCK-----)'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'hookseal keygen --sealing-key FILE writes the private key to FILE '
                         'and prints the public key to register';
    END IF;
    BEGIN
        key := _dearmor(public_key);
        id := _pgp_key_id(key);
        -- pgcrypto refuses a key it cannot encrypt to only when it uses it.
        PERFORM _pgp_pub_encrypt('hookseal', key);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'hookseal: not a sealing public key pgcrypto can encrypt to (%)', SQLERRM
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'use the public key hookseal keygen --sealing-key printed (RSA)';
    END;
    RETURN id;
END
$$;

-- The key id a stored sealed secret was sealed to (NULL when it is not in
-- the sealed form).
CREATE FUNCTION _sealed_key_id(stored text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    IF NOT (starts_with(stored, 'pgp1.') OR starts_with(stored, 'pgp1k.')) THEN
        RETURN NULL;
    END IF;
    RETURN _pgp_key_id(decode(substr(stored, strpos(stored, '.') + 1), 'base64'));
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END
$$;

-- The sealing key new secrets are sealed to: the newest registered one
-- (register_sealing_key makes a key newest again). The one place that
-- rule is written: _encrypt_secret, _needs_rewrap and hookseal reseal ask here.
CREATE FUNCTION _newest_sealing_key(OUT id text, OUT public_key text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT k.id, k.public_key FROM sealing_keys k ORDER BY k.created_at DESC, k.id LIMIT 1
$$;

-- Seals a new secret to the newest registered sealing key (internal: the
-- native flavour's encryption under the server key).
CREATE FUNCTION _encrypt_secret(secret text) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
DECLARE
    key text;
BEGIN
    key := (_newest_sealing_key()).public_key;
    IF key IS NULL THEN
        RAISE EXCEPTION 'hookseal: no sealing key is registered, so no secret can be stored'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'hookseal keygen --sealing-key FILE makes the pair (FILE goes to the '
                         'dispatchers); then SELECT hookseal.register_sealing_key(''<public key>'')';
    END IF;
    RETURN 'pgp1.' || translate(encode(_pgp_pub_encrypt(secret, _dearmor(key)), 'base64'), E'\n', '');
END
$$;

CREATE FUNCTION _decrypt_secret(stored text) RETURNS text
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    PERFORM _native_only('opening a secret in the database',
        'in the portable flavour only the holders of the sealing key (the dispatchers) open secrets');
    RETURN NULL;
END
$$;

-- True when `stored` is sealed to a key other than the newest (rotation:
-- hookseal reseal reseals those, since the database cannot).
CREATE FUNCTION _needs_rewrap(stored text) RETURNS boolean
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
    SELECT _sealed_key_id(stored) IS DISTINCT FROM (_newest_sealing_key()).id
$$;

CREATE FUNCTION _rewrap(stored text) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    PERFORM _native_only('resealing in the database',
        'run hookseal reseal --database-url URL --sealing-key-file NEW --sealing-key-file OLD: '
        'it opens with the old key and seals to the newest registered one');
    RETURN NULL;
END
$$;

-- A v1a signing key is stored in its own sealed form (`pgp1k.`): the
-- database cannot open it to look.
CREATE FUNCTION _is_signing_key(scheme text, stored text) RETURNS boolean
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$ SELECT starts_with(stored, 'pgp1k.') $$;

CREATE FUNCTION _new_keypair(scheme text, OUT signing text, OUT public text)
LANGUAGE plpgsql VOLATILE STRICT PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    PERFORM _native_only('a v1a (ed25519) key pair made in the database',
        'pgcrypto has no ed25519: hookseal keypair --endpoint ID [--grace 24h] makes the pair, '
        'seals its signing key and stores it (add_sealed_keypair)');
END
$$;

CREATE FUNCTION webhook_public_key(scheme text, key text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    PERFORM _native_only('webhook_public_key (ed25519)',
        'hookseal keygen --scheme standard-v1a makes and derives ed25519 keys outside the database');
    RETURN NULL;
END
$$;

CREATE FUNCTION _sign_stored(scheme text, stored text[], body text, id text, ts timestamptz)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, hookseal, pg_temp
AS $$
BEGIN
    PERFORM _native_only('signing with stored secrets in the database',
        'in the portable flavour claim() returns the sealed secrets and the dispatcher signs');
    RETURN NULL;
END
$$;
