-- A tenant's first look at its data with psql:
--   psql "host=127.0.0.1 port=6432 dbname=tollgate user=globex password=globex" -f bi-examples/psql/queries.sql
\dt+ tpch.*
\d tpch.orders
SELECT o_orderpriority, count(*) AS orders
FROM tpch.orders
GROUP BY o_orderpriority
ORDER BY o_orderpriority;
\copy (SELECT o_orderkey, o_orderdate FROM tpch.orders ORDER BY o_orderkey LIMIT 5) to stdout with csv header
SELECT count(*) AS queries FROM tollgate.usage;
