-- Apache Superset (PostgreSQL engine spec) with SQLAlchemy 1.4 postgresql dialect + psycopg2 2.9.6.
-- Superset pins sqlalchemy>=1.4,<2 and psycopg2-binary==2.9.6 (pyproject.toml); dialect SQL taken from
-- sqlalchemy/sqlalchemy tag rel_1_4_54 (lib/sqlalchemy/dialects/postgresql/base.py, psycopg2.py).
-- psycopg2 interpolates parameters CLIENT-SIDE and uses the simple Query protocol, so the substituted text below is
-- byte-for-byte what a server would receive apart from whitespace normalisation (multi-line statements keep
-- their original layout only where they contain '--' comments).
-- psycopg2 runs in transaction mode: BEGIN before the first statement on a connection, ROLLBACK when SQLAlchemy
-- returns it to the pool.  Superset uses NullPool for analytics DBs, so the connect block is repeated per API call.
-- Assumes server_version >= 12 (16.x) and that the server reports DateStyle 'ISO, MDY'.  OID ${oid:tpch.orders} = tpch.orders.
-- CONDITIONAL, psycopg2 connect: only if the server's DateStyle ParameterStatus does not start with 'ISO' (conn_is_datestyle_ok) (source: psycopg/psycopg2:psycopg/connection_int.c + psycopg/pqpath.c)
SET DATESTYLE TO 'ISO'
;;
-- SQLAlchemy 1.4 PGDialect_psycopg2.on_connect (use_native_hstore=True) -> psycopg2 extras.HstoreAdapter.get_oids; psycopg2 is not in autocommit so it opens a transaction first (source: sqlalchemy/sqlalchemy:lib/sqlalchemy/dialects/postgresql/psycopg2.py + psycopg/psycopg2:psycopg/pqpath.c)
BEGIN
;;
-- HstoreAdapter.get_oids (server >= 8.3 so typarray); the text ends with ';' and a newline (source: psycopg/psycopg2:lib/extras.py)
SELECT t.oid, typarray FROM pg_type t JOIN pg_namespace ns ON typnamespace = ns.oid WHERE typname = 'hstore';
;;
-- get_oids restores the idle state: conn.rollback() (source: psycopg/psycopg2:lib/extras.py)
ROLLBACK
;;
-- first_connect -> dialect.initialize(): implicit psycopg2 transaction start (source: sqlalchemy/sqlalchemy:lib/sqlalchemy/engine/create.py + psycopg/psycopg2:psycopg/pqpath.c)
BEGIN
;;
-- DefaultDialect.initialize -> PGDialect._get_server_version_info (source: sqlalchemy/sqlalchemy:lib/sqlalchemy/dialects/postgresql/base.py)
select pg_catalog.version()
;;
-- DefaultDialect.initialize -> _get_default_schema_name (source: sqlalchemy/sqlalchemy:lib/sqlalchemy/dialects/postgresql/base.py)
select current_schema()
;;
-- DefaultDialect.initialize -> get_default_isolation_level -> PGDialect.get_isolation_level (source: sqlalchemy/sqlalchemy:lib/sqlalchemy/dialects/postgresql/base.py)
show transaction isolation level
;;
-- PGDialect.initialize (server >= 8.2) (source: sqlalchemy/sqlalchemy:lib/sqlalchemy/dialects/postgresql/base.py)
show standard_conforming_strings
;;
-- first_connect finally: dialect.do_rollback(c.connection) (source: sqlalchemy/sqlalchemy:lib/sqlalchemy/engine/create.py)
ROLLBACK
;;
-- Superset 'Test connection': TestConnectionDatabaseCommand ping -> engine.dialect.do_ping(raw_connection) -> autocommit=True, cursor.execute(_dialect_specific_select_one) (no BEGIN) (source: apache/superset:superset/commands/database/test_connection.py + sqlalchemy/sqlalchemy:lib/sqlalchemy/dialects/postgresql/psycopg2.py)
SELECT 1
;;
-- Each later Inspector call checks out a connection and psycopg2 opens a transaction before the first statement; with Superset's default NullPool every call also re-runs the connect statements above on a fresh connection (source: psycopg/psycopg2:psycopg/pqpath.c)
BEGIN
;;
-- SQL Lab / dataset picker: PostgresEngineSpec.get_catalog_names (supports_catalog=True); text incl. trailing ';' (source: apache/superset:superset/db_engine_specs/postgres.py)
SELECT datname FROM pg_database WHERE datistemplate = false;
;;
-- Connection returned to pool: reset-on-return rollback (psycopg2 only sends it when a transaction is open) (source: sqlalchemy/sqlalchemy:lib/sqlalchemy/pool/base.py)
ROLLBACK
;;
-- Next API call (/schemas/): new pooled connection, implicit transaction start (source: psycopg/psycopg2:psycopg/pqpath.c)
BEGIN
;;
-- BaseEngineSpec.get_schema_names -> Inspector.get_schema_names -> PGDialect.get_schema_names (source: sqlalchemy/sqlalchemy:lib/sqlalchemy/dialects/postgresql/base.py)
-- expect: tpch
SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' ORDER BY nspname
;;
-- PostgresEngineSpec.get_table_names -> inspector.get_table_names('tpch'); :schema interpolated client-side by psycopg2 as 'tpch' (source: apache/superset:superset/db_engine_specs/postgres.py + sqlalchemy/sqlalchemy:lib/sqlalchemy/dialects/postgresql/base.py)
-- expect: orders, lineitem
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'tpch' AND c.relkind in ('r', 'p')
;;
-- PostgresEngineSpec.get_table_names also unions inspector.get_foreign_table_names('tpch') -> _get_foreign_table_names (source: apache/superset:superset/db_engine_specs/postgres.py + sqlalchemy/sqlalchemy:lib/sqlalchemy/dialects/postgresql/base.py)
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'tpch' AND c.relkind = 'f'
;;
-- BaseEngineSpec.get_view_names -> inspector.get_view_names('tpch') (include plain+materialized) (source: sqlalchemy/sqlalchemy:lib/sqlalchemy/dialects/postgresql/base.py)
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'tpch' AND c.relkind IN ('v', 'm')
;;
-- End of the /tables/ calls: connection returned to pool (source: sqlalchemy/sqlalchemy:lib/sqlalchemy/pool/base.py)
ROLLBACK
;;
-- /table_metadata/ call: implicit transaction start (source: psycopg/psycopg2:psycopg/pqpath.c)
BEGIN
;;
-- table_metadata -> Database.get_columns -> PGDialect.get_columns -> get_table_oid (cached per Inspector via info_cache) (source: apache/superset:superset/databases/utils.py + sqlalchemy/sqlalchemy:lib/sqlalchemy/dialects/postgresql/base.py)
SELECT c.oid FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE (n.nspname = 'tpch') AND c.relname = 'orders' AND c.relkind in ('r', 'v', 'm', 'f', 'p')
;;
-- get_columns main query (server >= 12 attgenerated, >= 10 identity sub-select with json_build_object, ::regclass::text / ::regclass::oid casts); :table_oid interpolated, substituted ${oid:tpch.orders} (source: sqlalchemy/sqlalchemy:lib/sqlalchemy/dialects/postgresql/base.py)
-- expect: o_orderkey, bigint
SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), ( SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef ) AS DEFAULT, a.attnotnull, a.attrelid as table_oid, pgd.description as comment, a.attgenerated as generated, (SELECT json_build_object( 'always', a.attidentity = 'a', 'start', s.seqstart, 'increment', s.seqincrement, 'minvalue', s.seqmin, 'maxvalue', s.seqmax, 'cache', s.seqcache, 'cycle', s.seqcycle) FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_class c on s.seqrelid = c."oid" WHERE c.relkind = 'S' AND a.attidentity != '' AND s.seqrelid = pg_catalog.pg_get_serial_sequence( a.attrelid::regclass::text, a.attname )::regclass::oid ) as identity_options FROM pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_description pgd ON ( pgd.objoid = a.attrelid AND pgd.objsubid = a.attnum) WHERE a.attrelid = ${oid:tpch.orders} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
;;
-- get_columns -> _load_domains (source: sqlalchemy/sqlalchemy:lib/sqlalchemy/dialects/postgresql/base.py)
SELECT t.typname as "name", pg_catalog.format_type(t.typbasetype, t.typtypmod) as "attype", not t.typnotnull as "nullable", t.typdefault as "default", pg_catalog.pg_type_is_visible(t.oid) as "visible", n.nspname as "schema" FROM pg_catalog.pg_type t LEFT JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype = 'd'
;;
-- get_columns -> _load_enums(schema='*') (no schema filter); the text contains '--' line comments, kept multi-line (source: sqlalchemy/sqlalchemy:lib/sqlalchemy/dialects/postgresql/base.py)
SELECT t.typname as "name",
   -- no enum defaults in 8.4 at least
   -- t.typdefault as "default",
   pg_catalog.pg_type_is_visible(t.oid) as "visible",
   n.nspname as "schema",
   e.enumlabel as "label"
FROM pg_catalog.pg_type t
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
     LEFT JOIN pg_catalog.pg_enum e ON t.oid = e.enumtypid
WHERE t.typtype = 'e'
ORDER BY "schema", "name", e.oid
;;
-- Database.get_pk_constraint -> PGDialect.get_pk_constraint (server >= 8.4: unnest/generate_subscripts set-returning functions); substituted ${oid:tpch.orders} (source: sqlalchemy/sqlalchemy:lib/sqlalchemy/dialects/postgresql/base.py)
SELECT a.attname FROM pg_attribute a JOIN ( SELECT unnest(ix.indkey) attnum, generate_subscripts(ix.indkey, 1) ord FROM pg_index ix WHERE ix.indrelid = ${oid:tpch.orders} AND ix.indisprimary ) k ON a.attnum=k.attnum WHERE a.attrelid = ${oid:tpch.orders} ORDER BY k.ord
;;
-- get_pk_constraint constraint name (source: sqlalchemy/sqlalchemy:lib/sqlalchemy/dialects/postgresql/base.py)
SELECT conname FROM pg_catalog.pg_constraint r WHERE r.conrelid = ${oid:tpch.orders} AND r.contype = 'p' ORDER BY 1
;;
-- get_foreign_keys (implicit comma joins, pg_get_constraintdef(oid, true)); :table substituted ${oid:tpch.orders} (source: sqlalchemy/sqlalchemy:lib/sqlalchemy/dialects/postgresql/base.py)
SELECT r.conname, pg_catalog.pg_get_constraintdef(r.oid, true) as condef, n.nspname as conschema FROM pg_catalog.pg_constraint r, pg_namespace n, pg_class c WHERE r.conrelid = ${oid:tpch.orders} AND r.contype = 'f' AND c.oid = confrelid AND n.oid = c.relnamespace ORDER BY 1
;;
-- get_indexes (server >= 11: ix.indnkeyatts; int2vector/oidvector ::varchar casts, = ANY(ix.indkey)); substituted ${oid:tpch.orders} (source: sqlalchemy/sqlalchemy:lib/sqlalchemy/dialects/postgresql/base.py)
SELECT i.relname as relname, ix.indisunique, ix.indexprs, a.attname, a.attnum, c.conrelid, ix.indkey::varchar, ix.indoption::varchar, i.reloptions, am.amname, pg_get_expr(ix.indpred, ix.indrelid), ix.indnkeyatts as indnkeyatts FROM pg_class t join pg_index ix on t.oid = ix.indrelid join pg_class i on i.oid = ix.indexrelid left outer join pg_attribute a on t.oid = a.attrelid and a.attnum = ANY(ix.indkey) left outer join pg_constraint c on (ix.indrelid = c.conrelid and ix.indexrelid = c.conindid and c.contype in ('p', 'u', 'x')) left outer join pg_am am on i.relam = am.oid WHERE t.relkind IN ('r', 'v', 'f', 'm', 'p') and t.oid = ${oid:tpch.orders} and ix.indisprimary = 'f' ORDER BY t.relname, i.relname
;;
-- Database.get_table_comment -> PGDialect.get_table_comment (source: apache/superset:superset/databases/utils.py + sqlalchemy/sqlalchemy:lib/sqlalchemy/dialects/postgresql/base.py)
-- expect: TPC-H orders table
SELECT pgd.description as table_comment FROM pg_catalog.pg_description pgd WHERE pgd.objsubid = 0 AND pgd.objoid = ${oid:tpch.orders}
;;
-- Connection returned to pool (source: sqlalchemy/sqlalchemy:lib/sqlalchemy/pool/base.py)
ROLLBACK
;;
-- SQL Lab, running a query with schema 'tpch' selected: PostgresEngineSpec.get_prequeries (session control; sent before the user SQL) (source: apache/superset:superset/db_engine_specs/postgres.py)
set search_path = "tpch"
;;
