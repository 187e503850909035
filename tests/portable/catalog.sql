-- The hookseal schema's public face, one line per fact, for comparing the
-- two flavours (tests/portable/run.sh): tables and views with their
-- columns, types, nullability and defaults; constraints; indexes;
-- triggers; types; every function whose name does not start with `_`, with
-- its arguments, result and security; and which of the three roles may do
-- what on each. Private helpers (`_…`) differ by design: in the native
-- flavour they are the Rust library, in the portable one pgcrypto SQL.
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = 'hookseal'),
roles(r) AS (VALUES ('hookseal_writer'), ('hookseal_dispatcher'), ('hookseal_admin'), ('public'))
SELECT line FROM (
    SELECT format('column %s.%s %s%s%s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
                  CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                  coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')) AS line
    FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
    WHERE c.relkind IN ('r', 'v', 'p', 'm')
    UNION ALL
    SELECT format('constraint %s %s %s', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid))
    FROM pg_constraint c JOIN ns ON ns.oid = c.connamespace
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN ns ON ns.oid = c.relnamespace
    UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(t.oid)
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN ns ON ns.oid = c.relnamespace
    WHERE NOT t.tgisinternal
    UNION ALL
    SELECT format('type %s %s', t.typname,
                  (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid))
    FROM pg_type t JOIN ns ON ns.oid = t.typnamespace WHERE t.typtype = 'e'
    UNION ALL
    SELECT format('view %s %s', c.relname, pg_get_viewdef(c.oid))
    FROM pg_class c JOIN ns ON ns.oid = c.relnamespace WHERE c.relkind = 'v'
    UNION ALL
    SELECT format('function %s(%s) %s %s%s', p.proname, pg_get_function_identity_arguments(p.oid),
                  pg_get_function_result(p.oid), p.provolatile,
                  CASE WHEN p.prosecdef THEN ' security definer' ELSE '' END)
    FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace WHERE p.proname NOT LIKE '\_%'
    UNION ALL
    SELECT format('grant %s %s %s', r, c.relname, string_agg(x.privilege_type, ',' ORDER BY x.privilege_type))
    FROM pg_class c JOIN ns ON ns.oid = c.relnamespace, roles,
         LATERAL aclexplode(c.relacl) x
    WHERE x.grantee = CASE WHEN r = 'public' THEN 0 ELSE (SELECT oid FROM pg_roles WHERE rolname = r) END
      AND c.relkind IN ('r', 'v', 'p', 'S')
    GROUP BY r, c.relname
    UNION ALL
    SELECT format('execute %s %s(%s)', r, p.proname, pg_get_function_identity_arguments(p.oid))
    FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace, roles
    WHERE p.proname NOT LIKE '\_%'
      AND CASE WHEN r = 'public'
               THEN EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) x
                            WHERE x.grantee = 0)
               ELSE has_function_privilege(r, p.oid, 'EXECUTE') END
    UNION ALL
    SELECT format('schema usage %s', r) FROM roles
    WHERE r <> 'public' AND has_schema_privilege(r, 'hookseal', 'USAGE')
) facts
ORDER BY line;
