-- PostgreSQL 14+: SQL-standard function bodies record what they use.

-- A default calling a function whose body reads the table.
CREATE TABLE loop_atomic (id integer, n bigint);
CREATE FUNCTION loop_atomic_count() RETURNS bigint
    LANGUAGE sql STABLE BEGIN ATOMIC SELECT count(*) FROM loop_atomic; END;
ALTER TABLE loop_atomic ALTER COLUMN n SET DEFAULT loop_atomic_count();
INSERT INTO loop_atomic (id) VALUES (1), (2);

-- A function whose body groups by a primary key (post-data).
CREATE TABLE loop_atomic_keyed (id integer PRIMARY KEY, v text);
CREATE FUNCTION loop_atomic_grouped() RETURNS SETOF text
    LANGUAGE sql STABLE BEGIN ATOMIC SELECT v FROM loop_atomic_keyed GROUP BY id; END;
CREATE VIEW loop_atomic_view AS SELECT * FROM loop_atomic_grouped() AS g(v);
