-- pgark's own round-trip fixture: every built-in type family with edge values, awkward
-- identifiers, dropped/generated/identity columns, a zero-column table with rows, inheritance
-- with rows in the parent, a multi-level partitioned table, a row larger than a chunk, and
-- sequences in every state. Tests load it into a fresh database, dump, restore and compare.

CREATE SCHEMA "Odd Schema";
CREATE SCHEMA sales;

CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy', 'with ''quote''', 'ünï');
CREATE TYPE public.pair AS (a integer, b text);
CREATE TYPE "Odd Schema"."Nested ""Type""" AS (p public.pair, tags text[], m public.mood);
CREATE DOMAIN public.positive_int AS integer NOT NULL CHECK (VALUE > 0);
CREATE DOMAIN public.short_text AS varchar(20) COLLATE "C" DEFAULT 'x' CHECK (length(VALUE) <= 20);
CREATE DOMAIN public.int_list AS integer[];
CREATE TYPE public.float_range AS RANGE (subtype = float8);

-- Every built-in type family, with edge values.
CREATE TABLE public.all_types (
    id integer PRIMARY KEY,
    b boolean,
    i2 smallint, i4 integer, i8 bigint,
    n numeric, n_fixed numeric(12, 4),
    f4 real, f8 double precision,
    money_v money,
    t text, vc varchar(10), c char(5), name_v name, bpchar_v "char",
    by bytea,
    d date, tm time, tmtz time with time zone, ts timestamp, tstz timestamptz, iv interval,
    j json, jb jsonb, x xml,
    u uuid,
    inet_v inet, cidr_v cidr, mac macaddr, mac8 macaddr8,
    bits bit(4), vbits bit varying(16),
    pt point, ln line, ls lseg, bx box, pth path, pg polygon, ci circle,
    tsv tsvector, tsq tsquery,
    r4 int4range, r8 int8range, nr numrange, tsr tsrange, tstzr tstzrange, dr daterange,
    arr_int integer[], arr_text text[], arr_2d integer[][], arr_bounds integer[],
    mood_v public.mood, mood_arr public.mood[],
    pair_v public.pair, pair_arr public.pair[],
    nested "Odd Schema"."Nested ""Type""",
    pos public.positive_int, short public.short_text, ilist public.int_list,
    frange public.float_range,
    oid_v oid, regclass_v regclass, pg_lsn_v pg_lsn
);

INSERT INTO public.all_types VALUES
(1, true, -32768, -2147483648, -9223372036854775808, 'NaN', -12345678.1234,
 'NaN', 'NaN', '-92233720368547758.08',
 '', '', '', '', 'a',
 '\x',
 '4713-01-01 BC', '00:00', '00:00+14', '4713-01-01 00:00 BC', '-infinity', '-178000000 years',
 '{}', '{}', '<a/>',
 '00000000-0000-0000-0000-000000000000',
 '0.0.0.0', '::/0', '00:00:00:00:00:00', '00:00:00:00:00:00:00:00',
 B'0000', B'',
 '(0,0)', '{1,-1,0}', '[(0,0),(1,1)]', '(1,1),(0,0)', '[(0,0),(1,1),(2,0)]', '((0,0),(1,1),(1,0))', '<(0,0),1>',
 '', '''a''',
 'empty', '(,)', '(,)', '(,)', 'empty', '[-infinity,infinity)',
 '{}', '{}', '{}', '[0:2]={1,2,3}',
 'sad', '{}',
 '(,)', '{}',
 NULL,
 1, '', '{}',
 'empty',
 0, 'pg_class', '0/0'),
(2, false, 32767, 2147483647, 9223372036854775807, '123456789012345678901234567890.123456789', 99999999.9999,
 'Infinity', 'Infinity', '92233720368547758.07',
 E'\\N', 'tab	here', 'abc', repeat('n', 63), E'\\',
 '\x00ff5c0a0d',
 '5874897-12-31', '24:00', '23:59:59.999999-15:59', '294276-12-31 23:59:59.999999', 'infinity', '178000000 years',
 '{"a": [1, 2.50, null, "\\u00e9"], "b": {"c": "\"q\""}}', '{"k": [true, false, null, 1e300]}',
 '<?xml version="1.0"?><doc>ü &amp; &lt;</doc>',
 'ffffffff-ffff-ffff-ffff-ffffffffffff',
 '255.255.255.255/32', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', 'ff:ff:ff:ff:ff:ff:ff:ff',
 B'1111', B'1010101010101010',
 '(1e308,-1e308)', '{0,1,-5}', '[(-1.5,2.25),(3,4)]', '(2,2),(-2,-2)', '((0,0),(1,1))', '((0,0),(0,1),(1,1),(1,0))', '<(1,1),1e-300>',
 'a:1A fat:2B,4C cat', 'fat & (rat | !cat)',
 '[1,10)', '[-9223372036854775808,9223372036854775807)', '(0.5,1e10]', '["2000-01-01","2000-01-02")', '["2000-01-01 00:00+00",)', '[2000-01-01,2000-02-01)',
 '{1,NULL,3}', '{"","NULL",NULL,"with\"quote","back\\slash","tab\there","new\nline"}', '{{1,2},{3,4}}', '[-3:-2]={7,8}',
 'with ''quote''', '{happy,NULL,ünï}',
 '(42,"multi\nline \\ text")', '{"(1,a)","(,)",NULL}',
 '("(1,x)","{a,NULL}",ok)',
 2147483647, 'a string longer', '{1,NULL}',
 '[-infinity,NaN]',
 4294967295, 'pg_catalog.pg_type', 'FFFFFFFF/FFFFFFFF'),
(4, true, 0, 0, 0, '-0.000000000000000000001', 0, '-0', '-0', 0,
 E'unicode: ☃ 𝄞 中文 Ελληνικά\r\n\\N', E'\\.', ' ', '', ' ',
 E'\\x5c4e',
 '2000-02-29', '12:34:56.789', '12:34:56+05:30', '2000-01-01 00:00:00.000001', '2000-01-01 00:00:00.5+13', '1 year 2 mons 3 days 04:05:06.789',
 'null', '"str"', 'plain text, no root element',
 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
 '::ffff:1.2.3.4', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05',
 B'0101', B'1',
 '(1.5,NaN)', '{1,0,Infinity}', '[(0,0),(0,0)]', '(0,0),(0,0)', '[(1,1)]', '((1,1))', '<(0,0),0>',
 'a b c', 'a <-> b',
 '[,5)', '(,)', 'empty', '(,"2000-01-01 00:00")', 'empty', '[2000-01-01,infinity)',
 '{-1}', '{""}', '{{NULL}}', '[5:5]={NULL}',
 'ok', '{sad,sad}',
 '(0,"")', '{}',
 '(,,)',
 5, 'short', NULL,
 '(1.5,2.5)',
 NULL, NULL, NULL);
-- All NULL where allowed (the NOT NULL domain column cannot be).
INSERT INTO public.all_types (id, pos) VALUES (3, 7);
INSERT INTO public.all_types (id, pos, n) VALUES (5, 9, '-123.450');
-- Multiranges and numeric infinities exist from PostgreSQL 14 on; the fixture also loads into 13.
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 140000 THEN
        UPDATE public.all_types SET n = 'Infinity' WHERE id = 5;
        EXECUTE 'ALTER TABLE public.all_types ADD COLUMN mr int4multirange';
        EXECUTE $q$UPDATE public.all_types SET mr = CASE id WHEN 1 THEN '{}' WHEN 2 THEN '{[1,3), [5,7)}' WHEN 4 THEN '{}' END::int4multirange$q$;
    END IF;
END $$;

-- Awkward identifiers: quotes, spaces, newlines, 63-byte names, reserved words, unicode.
CREATE TABLE "Odd Schema"."select" (
    "from" integer,
    "Mixed Case" text,
    "quote""d" text,
    "new
line" text,
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk" text,
    "ünïcödé" text,
    "user" text
);
INSERT INTO "Odd Schema"."select" VALUES
    (1, 'a', 'b', 'c', 'd', 'e', 'f'),
    (2, NULL, '', E'\\N', E'back\\slash', E'tab\there', E'nl\nhere'),
    (3, 'NULL', '\N', NULL, repeat('x', 1000), '', ' ');
CREATE TABLE public."abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz0123456789_" (
    "a""b c" integer PRIMARY KEY
);
INSERT INTO public."abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz0123456789_"
    SELECT generate_series(1, 10);

-- Dropped, generated and identity columns.
CREATE TABLE sales.orders (
    id bigint GENERATED ALWAYS AS IDENTITY (START WITH 1000 INCREMENT BY 7),
    doomed text,
    qty integer NOT NULL DEFAULT 1 CHECK (qty > 0),
    price numeric(10, 2) NOT NULL,
    total numeric GENERATED ALWAYS AS (qty * price) STORED,
    note text DEFAULT 'n/a',
    created date DEFAULT CURRENT_DATE,
    PRIMARY KEY (id)
);
ALTER TABLE sales.orders DROP COLUMN doomed;
INSERT INTO sales.orders (qty, price, note) SELECT g % 5 + 1, g * 1.25, 'order ' || g FROM generate_series(1, 500) g;
ALTER TABLE sales.orders ADD COLUMN late_added text DEFAULT 'late';

CREATE TABLE sales.order_lines (
    order_id bigint NOT NULL REFERENCES sales.orders (id) ON DELETE CASCADE,
    line_no integer GENERATED BY DEFAULT AS IDENTITY,
    sku text NOT NULL,
    PRIMARY KEY (order_id, line_no),
    UNIQUE (sku, order_id)
);
INSERT INTO sales.order_lines (order_id, sku) SELECT id, 'sku-' || id FROM sales.orders;
CREATE INDEX order_lines_sku_lower ON sales.order_lines (lower(sku)) WHERE line_no > 0;

-- A zero-column table with rows.
CREATE TABLE public.no_columns ();
INSERT INTO public.no_columns DEFAULT VALUES;
INSERT INTO public.no_columns DEFAULT VALUES;
INSERT INTO public.no_columns DEFAULT VALUES;

-- A table whose only column is dropped: zero columns, rows kept.
CREATE TABLE public.all_dropped (gone integer);
INSERT INTO public.all_dropped VALUES (1), (2);
ALTER TABLE public.all_dropped DROP COLUMN gone;

-- Inheritance with rows in the parent.
CREATE TABLE public.animal (id serial PRIMARY KEY, name text NOT NULL, legs integer CHECK (legs >= 0));
CREATE TABLE public.dog (breed text) INHERITS (public.animal);
CREATE TABLE public.puppy (age_weeks integer) INHERITS (public.dog);
INSERT INTO public.animal (name, legs) VALUES ('snake', 0), ('bird', 2);
INSERT INTO public.dog (name, legs, breed) VALUES ('rex', 4, 'collie');
INSERT INTO public.puppy (name, legs, breed, age_weeks) VALUES ('bit', 4, 'pug', 8);

-- A multi-level partitioned table with rows at the leaves.
CREATE TABLE public.events (
    id bigint NOT NULL,
    region text NOT NULL,
    at date NOT NULL,
    payload jsonb,
    PRIMARY KEY (id, region, at)
) PARTITION BY LIST (region);
CREATE TABLE public.events_eu PARTITION OF public.events FOR VALUES IN ('eu') PARTITION BY RANGE (at);
CREATE TABLE public.events_eu_2025 PARTITION OF public.events_eu FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE public.events_eu_2026 PARTITION OF public.events_eu FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE public.events_us PARTITION OF public.events FOR VALUES IN ('us');
CREATE TABLE public.events_other PARTITION OF public.events DEFAULT;
CREATE INDEX events_payload ON public.events USING gin (payload);
INSERT INTO public.events
    SELECT g, (ARRAY['eu', 'us', 'apac'])[g % 3 + 1], DATE '2025-06-01' + (g % 400), jsonb_build_object('n', g)
    FROM generate_series(1, 3000) g;

-- A row larger than a chunk (tests dump with a small --chunk-size) and many ordinary ones.
CREATE TABLE public.big_rows (id integer PRIMARY KEY, blob text, bin bytea);
INSERT INTO public.big_rows VALUES (1, repeat('0123456789abcdef', 200000), decode(repeat('00ff', 100000), 'hex'));
INSERT INTO public.big_rows SELECT g, md5(g::text), NULL FROM generate_series(2, 20000) g;

-- Unlogged table and an empty table.
CREATE UNLOGGED TABLE public.scratch (k text PRIMARY KEY, v integer);
INSERT INTO public.scratch VALUES ('a', 1);
CREATE TABLE public.empty_table (id integer);

-- Sequences in every state.
CREATE SEQUENCE public.seq_fresh;
CREATE SEQUENCE public.seq_called;
SELECT nextval('public.seq_called'), nextval('public.seq_called');
CREATE SEQUENCE public.seq_set_not_called;
SELECT setval('public.seq_set_not_called', 42, false);
CREATE SEQUENCE public.seq_desc INCREMENT BY -3 MINVALUE -1000 MAXVALUE -1 START WITH -1 CACHE 5;
SELECT nextval('public.seq_desc');
CREATE SEQUENCE public.seq_cycle AS smallint MINVALUE 1 MAXVALUE 3 CYCLE;
SELECT nextval('public.seq_cycle'), nextval('public.seq_cycle'), nextval('public.seq_cycle'), nextval('public.seq_cycle');
CREATE SEQUENCE public.seq_at_max MAXVALUE 5;
SELECT setval('public.seq_at_max', 5);
CREATE SEQUENCE "Odd Schema"."Seq ""quoted""" START 100;
SELECT nextval('"Odd Schema"."Seq ""quoted"""');
CREATE TABLE public.owns_seq (n integer);
CREATE SEQUENCE public.owned_seq OWNED BY public.owns_seq.n;
ALTER TABLE public.owns_seq ALTER COLUMN n SET DEFAULT nextval('public.owned_seq');
INSERT INTO public.owns_seq DEFAULT VALUES;
INSERT INTO public.owns_seq DEFAULT VALUES;

-- A foreign key across schemas with awkward names.
CREATE TABLE "Odd Schema".refs (
    id integer PRIMARY KEY,
    animal_id integer REFERENCES public.animal (id) DEFERRABLE INITIALLY DEFERRED,
    mood public.mood DEFAULT 'ok'
);
INSERT INTO "Odd Schema".refs VALUES (1, 1, 'happy'), (2, NULL, DEFAULT);
