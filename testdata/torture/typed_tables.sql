-- Typed tables: columns from a composite type, with per-column options of their own.
CREATE TYPE typed_person AS (id integer, name text, born date);
CREATE TABLE typed_plain OF typed_person;
CREATE TABLE typed_options OF typed_person (
    id WITH OPTIONS NOT NULL,
    name WITH OPTIONS DEFAULT 'nobody',
    PRIMARY KEY (id),
    CHECK (born > '1900-01-01')
);
CREATE TABLE typed_parted OF typed_person (id NOT NULL) PARTITION BY LIST (id);
CREATE TABLE typed_parted_1 PARTITION OF typed_parted FOR VALUES IN (1);
INSERT INTO typed_plain VALUES (1, 'a', '2000-01-01');
INSERT INTO typed_options (id, born) VALUES (7, '1999-12-31');
INSERT INTO typed_parted VALUES (1, 'p', NULL);
COMMENT ON COLUMN typed_options.name IS 'defaulted';
