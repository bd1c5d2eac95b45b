-- PostgreSQL 14+: procedures with OUT arguments, overloaded so that only the modes tell
-- them apart.
CREATE PROCEDURE sig_proc(OUT a integer, IN b integer, IN c integer)
    LANGUAGE plpgsql AS $$BEGIN a := b + c; END$$;
CREATE PROCEDURE sig_proc(IN a integer, IN b integer, IN c integer)
    LANGUAGE plpgsql AS $$BEGIN NULL; END$$;
COMMENT ON PROCEDURE sig_proc(OUT integer, IN integer, IN integer) IS 'OUT first';
COMMENT ON PROCEDURE sig_proc(IN integer, IN integer, IN integer) IS 'all IN';
REVOKE ALL ON PROCEDURE sig_proc(OUT integer, IN integer, IN integer) FROM PUBLIC;
CREATE PROCEDURE sig_inout(INOUT a anyelement, OUT b anyelement)
    LANGUAGE plpgsql AS $$BEGIN b := a; END$$;
COMMENT ON PROCEDURE sig_inout(INOUT anyelement, OUT anyelement) IS 'INOUT and OUT';
CREATE PROCEDURE sig_variadic(OUT a integer, VARIADIC b integer[])
    LANGUAGE plpgsql AS $$BEGIN a := cardinality(b); END$$;
COMMENT ON PROCEDURE sig_variadic(OUT integer, VARIADIC integer[]) IS 'OUT and VARIADIC';
