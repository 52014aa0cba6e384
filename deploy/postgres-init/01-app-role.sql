-- Runs once, when the compose PostgreSQL volume is created (docker-entrypoint-initdb.d).
-- The services connect as bo_service, a login role in bo_app: it may append to the log
-- but never change it. The schema owner `bo` runs only the migrations.
-- The password is for local compose use only; real deployments use their secret store.
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bo_app') THEN
        CREATE ROLE bo_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bo_service') THEN
        CREATE ROLE bo_service LOGIN PASSWORD 'bo_service' IN ROLE bo_app;
    END IF;
END $$;
