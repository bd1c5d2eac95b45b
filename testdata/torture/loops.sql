-- Dependency loops that pg_dump's sorter repairs: each must dump, restore and compare equal.

-- A CHECK constraint calling a function that takes the table's own row type.
CREATE TABLE loop_check (a integer, b integer);
CREATE FUNCTION loop_check_ok(loop_check) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS 'SELECT $1.a < $1.b';
ALTER TABLE loop_check ADD CONSTRAINT loop_check_ordered CHECK (loop_check_ok(loop_check.*));
INSERT INTO loop_check VALUES (1, 2), (3, 4);

-- The same through a column default.
CREATE TABLE loop_default (a integer, b text);
CREATE FUNCTION loop_default_label(loop_default) RETURNS text
    LANGUAGE sql IMMUTABLE AS 'SELECT ''row'' || $1.a';
CREATE FUNCTION loop_default_first(loop_default) RETURNS integer
    LANGUAGE sql IMMUTABLE AS 'SELECT 1';
ALTER TABLE loop_default ALTER COLUMN a SET DEFAULT loop_default_first(NULL::loop_default);
INSERT INTO loop_default (b) VALUES ('x');

-- A domain whose constraint calls a function that takes the domain's array type (called on an
-- empty array, so that checking the domain does not check the domain again).
CREATE DOMAIN loop_even AS integer;
CREATE FUNCTION loop_all_even(loop_even[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS 'SELECT true';
ALTER DOMAIN loop_even ADD CONSTRAINT loop_even_check
    CHECK (VALUE % 2 = 0 AND loop_all_even(ARRAY[]::loop_even[]));
CREATE TABLE loop_domain_user (n loop_even);
INSERT INTO loop_domain_user VALUES (2), (4);

-- A view and a function returning the view's row type, which the view calls.
CREATE TABLE loop_base (id integer PRIMARY KEY, v text);
CREATE VIEW loop_view AS SELECT id, v FROM loop_base;
CREATE FUNCTION loop_view_first() RETURNS loop_view
    LANGUAGE sql STABLE AS 'SELECT id, v FROM loop_base ORDER BY id LIMIT 1';
CREATE OR REPLACE VIEW loop_view AS
    SELECT id, v FROM loop_base WHERE id <> (loop_view_first()).id
    UNION ALL SELECT (loop_view_first()).id, (loop_view_first()).v;
INSERT INTO loop_base VALUES (1, 'one');

-- A view grouping by a primary key (it needs the post-data constraint).
CREATE VIEW loop_grouped AS SELECT id, v, count(*) AS n FROM loop_base GROUP BY id;

-- A materialized view over a view, and an index on it.
CREATE MATERIALIZED VIEW loop_matview AS SELECT id, v FROM loop_grouped;
CREATE UNIQUE INDEX loop_matview_id ON loop_matview (id);

-- A base type and its I/O functions, which take and return it (shell types).
CREATE TYPE loop_text_wrapper;
CREATE FUNCTION loop_text_wrapper_in(cstring) RETURNS loop_text_wrapper
    LANGUAGE internal IMMUTABLE STRICT AS 'textin';
CREATE FUNCTION loop_text_wrapper_out(loop_text_wrapper) RETURNS cstring
    LANGUAGE internal IMMUTABLE STRICT AS 'textout';
CREATE TYPE loop_text_wrapper (
    INPUT = loop_text_wrapper_in, OUTPUT = loop_text_wrapper_out, LIKE = text
);
CREATE TABLE loop_wrapped (w loop_text_wrapper);
INSERT INTO loop_wrapped VALUES ('wrapped');

-- Partitioned indexes attached to each partition's, with a foreign key to the parent's key.
CREATE TABLE loop_parted (id integer, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE loop_parted_2024 PARTITION OF loop_parted
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE loop_parted_ref (id integer, at date, FOREIGN KEY (id, at) REFERENCES loop_parted);
INSERT INTO loop_parted VALUES (1, '2024-05-01');
INSERT INTO loop_parted_ref VALUES (1, '2024-05-01');
