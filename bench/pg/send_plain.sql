WITH ev AS (
    INSERT INTO plain.events (id, type, app_id, data)
    VALUES ('evt_' || md5(random()::text), 'payment.created', :app,
            '{"id":"seti_1NG8Du2eZvKYlo2C9XMqbR0x","object":"setup_intent","amount":1250,"currency":"usd","status":"requires_confirmation","livemode":false,"metadata":{}}')
    RETURNING id, type, created_at, data
)
INSERT INTO plain.outbox (event_id, endpoint_id, body, headers)
SELECT ev.id, e.id,
       json_build_object('id', ev.id, 'type', ev.type, 'timestamp', ev.created_at, 'data', ev.data)::text,
       '{}'
FROM ev JOIN hookseal.endpoints e ON e.app_id = :app AND e.enabled;
