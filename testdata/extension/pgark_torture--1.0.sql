\echo Use "CREATE EXTENSION pgark_torture" to load this file. \quit

-- Settings: the extension's own rows are builtin; the dump keeps only the users' (its filter).
CREATE TABLE @extschema@.torture_settings (
    name text PRIMARY KEY,
    value text NOT NULL,
    builtin boolean NOT NULL DEFAULT false
);
INSERT INTO @extschema@.torture_settings (name, value, builtin)
VALUES ('mode', 'strict', true), ('retries', '3', true);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.torture_settings', 'WHERE NOT builtin');

-- Jobs: every row is the users' (empty filter); a foreign key to the settings, so its rows must
-- load after theirs; a serial whose sequence is marked too.
CREATE TABLE @extschema@.torture_jobs (
    id bigserial PRIMARY KEY,
    setting text REFERENCES @extschema@.torture_settings (name),
    command text NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.torture_jobs', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.torture_jobs_id_seq', '');

-- A marked sequence of its own.
CREATE SEQUENCE @extschema@.torture_ticket;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.torture_ticket', '');

-- Not configuration: its rows are the extension's alone and never dumped.
CREATE TABLE @extschema@.torture_internal (x integer);
INSERT INTO @extschema@.torture_internal VALUES (1);
