-- The "full" TPC-H index set (scripts/bench.sh --index-set full): primary keys, foreign keys
-- and three secondary indexes, one of them on the composite foreign key of lineitem.
\ir tpch-keys.sql
CREATE INDEX lineitem_shipdate ON lineitem (l_shipdate);
CREATE INDEX orders_orderdate ON orders (o_orderdate);
CREATE INDEX lineitem_part_supp ON lineitem (l_partkey, l_suppkey);
