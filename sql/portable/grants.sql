-- The portable flavour's grants, after hookseal.sql (whose grants are the
-- same in both flavours). webhook_sign, webhook_verify, webhook_body and the
-- other public functions are SECURITY INVOKER here as the native flavour's C
-- functions are, but here they are SQL calling these helpers; so each
-- role that may call them must be able to call the helpers too (without
-- this, hookseal_writer got "permission denied for function _sign").
-- Every helper listed computes over its arguments only (and the core's
-- scheme descriptions): no table, no stored secret, no sealing. The ones
-- that seal or read keys (_encrypt_secret, _pgp_pub_encrypt, _dearmor,
-- _pgp_key_id, _sealing_key_id, _sealed_key_id) stay the owner's, reached
-- only through SECURITY DEFINER functions; the privileges suite's portable
-- matrix (expected/privileges_1.out) shows the result.
GRANT EXECUTE ON FUNCTION
    _canonical_base64(text),
    _core_limit(text),
    _decode_signature(jsonb, text),
    _endpoint_scheme_error(text),
    _header_item(text, text, text),
    _header_pairs(jsonb),
    _header_values(text[], text[], text),
    _hmac(bytea, bytea, text),
    _hmac_key(jsonb, text),
    _hmac_keys(jsonb, text[]),
    _is_message_id(text),
    _is_token(text),
    _in_order(text, text, text, jsonb),
    _js_compact(text),
    _json_field_reason(text, bytea),
    _list_tags(jsonb),
    _mac_text(jsonb, bytea, bytea),
    _match_any(jsonb, text, bytea[], text[], boolean[], text, text, bytea, text, bytea),
    _max_body_bytes(),
    _message_id(text),
    _nanoid(integer),
    _native_only(text, text),
    _parse_signature_value(jsonb, text, text[], boolean[], integer[], text, text),
    _projection(jsonb, text),
    _query_signature(text, text),
    _random_bytes(integer),
    _refuse(text),
    _scheme(text),
    _scheme_presets(),
    _secret_prefix(),
    _sent_body(jsonb, text),
    _sign(text, text[], bytea, text, timestamptz),
    _signed_body(jsonb, bytea),
    _signed_header_text(jsonb, text[], text[], text, text),
    _signed_message(text, text, text, bytea, bytea, text),
    _template_parts(text),
    _verify(text, text[], bytea, jsonb, integer, timestamptz, text),
    _window(numeric, numeric, integer)
TO hookseal_writer, hookseal_dispatcher, hookseal_admin;

-- hookseal keypair (as an admin) seals a signing key to the newest sealing
-- key, which admins may read anyway (SELECT on sealing_keys).
GRANT EXECUTE ON FUNCTION _newest_sealing_key() TO hookseal_admin;
