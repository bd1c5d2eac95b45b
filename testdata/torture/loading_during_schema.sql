-- Tables loaded while the rest of the schema is still being created (restore with more than
-- one session): partitions as soon as they are attached, owned and granted; what must wait for
-- the whole schema; owners, privileges and comments of tables and sequences, which a restore
-- runs right after each table's creation. Enough filler tables that the schema commits several
-- times while it runs.

DO $$
BEGIN
    CREATE ROLE loading_owner;
    CREATE ROLE loading_reader;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

CREATE TABLE measurements (
    id bigserial,
    region integer NOT NULL,
    taken date NOT NULL,
    value numeric
) PARTITION BY LIST (region);
COMMENT ON TABLE measurements IS 'partitioned by region';
ALTER TABLE measurements OWNER TO loading_owner;
GRANT SELECT ON measurements TO loading_reader;

DO $$
BEGIN
    FOR r IN 1..60 LOOP
        EXECUTE format('CREATE TABLE measurements_%s PARTITION OF measurements FOR VALUES IN (%s)', r, r);
        EXECUTE format('ALTER TABLE measurements_%s OWNER TO loading_owner', r);
        EXECUTE format('COMMENT ON TABLE measurements_%s IS %L', r, 'region ' || r);
        IF r % 3 = 0 THEN
            EXECUTE format('GRANT SELECT, INSERT ON measurements_%s TO loading_reader', r);
        END IF;
    END LOOP;
END $$;

-- A default partition, itself partitioned: attaching any sibling scans it.
CREATE TABLE measurements_other PARTITION OF measurements DEFAULT PARTITION BY RANGE (taken);
CREATE TABLE measurements_other_old PARTITION OF measurements_other
    FOR VALUES FROM ('2000-01-01') TO ('2020-01-01');
CREATE TABLE measurements_other_new PARTITION OF measurements_other
    FOR VALUES FROM ('2020-01-01') TO ('2100-01-01');

INSERT INTO measurements (region, taken, value)
SELECT 1 + g % 70, date '2010-01-01' + g % 5000, g / 7.0
FROM generate_series(1, 20000) AS g;

-- A check whose function reads a table the schema creates later (function bodies are not
-- checked when they are created): its rows must wait for the whole schema, or the check fails
-- with "relation public.zz_retired does not exist" (a restore creates tables by name, after
-- functions).
CREATE TABLE zz_retired (code text PRIMARY KEY);
CREATE FUNCTION not_retired(code text) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$ SELECT NOT EXISTS (SELECT 1 FROM public.zz_retired WHERE zz_retired.code = $1) $$;
CREATE TABLE aa_coded (id integer PRIMARY KEY, code text CHECK (public.not_retired(code)));
INSERT INTO aa_coded SELECT g, 'c' || g FROM generate_series(1, 500) AS g;

-- A domain whose check calls a function.
CREATE FUNCTION is_even(n integer) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT n % 2 = 0 $$;
CREATE DOMAIN even_number AS integer CHECK (public.is_even(VALUE));
CREATE TABLE evens (n even_number);
INSERT INTO evens SELECT 2 * g FROM generate_series(1, 300) AS g;

-- Inheritance: the parent's rows and its children's.
CREATE TABLE events (id integer, note text);
CREATE TABLE events_2024 () INHERITS (events);
CREATE TABLE events_2025 (extra text) INHERITS (events);
INSERT INTO events VALUES (1, 'parent');
INSERT INTO events_2024 VALUES (2, 'child 2024');
INSERT INTO events_2025 VALUES (3, 'child 2025', 'x');
ALTER TABLE events OWNER TO loading_owner;
ALTER TABLE events_2025 OWNER TO loading_owner;

-- A sequence owned by a role and linked to a table of that role, and a view over a table.
CREATE SEQUENCE ticket_numbers;
CREATE TABLE tickets (id integer DEFAULT nextval('ticket_numbers'), title text);
ALTER SEQUENCE ticket_numbers OWNED BY tickets.id;
ALTER TABLE tickets OWNER TO loading_owner;
GRANT USAGE ON SEQUENCE ticket_numbers TO loading_reader;
COMMENT ON SEQUENCE ticket_numbers IS 'ticket numbers';
INSERT INTO tickets (title) SELECT 'ticket ' || g FROM generate_series(1, 200) AS g;
CREATE VIEW recent_tickets AS SELECT * FROM tickets WHERE id > 100;
ALTER VIEW recent_tickets OWNER TO loading_owner;

-- Filler: a long schema, each table with a row, an owner, a comment and a grant.
DO $$
BEGIN
    FOR n IN 1..150 LOOP
        EXECUTE format('CREATE TABLE filler_%s (id integer, label text)', n);
        EXECUTE format('INSERT INTO filler_%s VALUES (%s, %L)', n, n, 'filler ' || n);
        EXECUTE format('ALTER TABLE filler_%s OWNER TO loading_owner', n);
        EXECUTE format('COMMENT ON TABLE filler_%s IS %L', n, 'filler table ' || n);
        EXECUTE format('GRANT SELECT ON filler_%s TO loading_reader', n);
    END LOOP;
END $$;
