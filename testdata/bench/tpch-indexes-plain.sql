-- The "plain" TPC-H index set (scripts/bench.sh --index-set plain, the default): primary
-- keys, foreign keys and two secondary indexes, as an independent harness measured with.
\ir tpch-keys.sql
CREATE INDEX lineitem_shipdate ON lineitem (l_shipdate);
CREATE INDEX orders_custkey ON orders (o_custkey);
