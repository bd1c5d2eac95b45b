-- Extension configuration tables and sequences (pg_extension_config_dump), with the test
-- extension in testdata/extension: the users' rows come back after CREATE EXTENSION, the
-- extension's own rows are not duplicated, rows load in foreign-key order, and the marked
-- sequences keep their state.
CREATE SCHEMA "Torture ext";
CREATE EXTENSION pgark_torture WITH SCHEMA "Torture ext";

INSERT INTO "Torture ext".torture_settings (name, value) VALUES ('site', 'eu-west');
-- Over a megabyte: large enough that a table the restore created would be truncated and loaded
-- frozen, which would take the extension's own rows with it.
INSERT INTO "Torture ext".torture_settings (name, value)
SELECT 'tenant ' || g, repeat('v', 100) FROM generate_series(1, 12000) AS g;
INSERT INTO "Torture ext".torture_jobs (setting, command)
VALUES ('site', 'vacuum'), ('mode', 'analyze'), (NULL, 'reindex');
SELECT nextval('"Torture ext".torture_ticket') FROM generate_series(1, 5);

-- A user table beside them that refers to an extension's table.
CREATE TABLE public.torture_job_owner (
    job bigint PRIMARY KEY REFERENCES "Torture ext".torture_jobs (id),
    owner text NOT NULL
);
INSERT INTO public.torture_job_owner VALUES (1, 'ops'), (2, 'dba');
