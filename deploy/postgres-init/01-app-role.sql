-- Runs once, when the compose PostgreSQL volume is created (docker-entrypoint-initdb.d).
-- Each bo service connects with a login role in the group its service needs (migration
-- 0006 grants the groups their privileges; it creates them too, IF NOT EXISTS):
--   bo_ingest_svc in bo_ingest, bo_projector_svc in bo_projector, bo_api_svc in bo_api,
--   bo_operator_svc in bo_operator. The schema owner `bo` runs only the migrations.
-- The passwords are for local compose use only; real deployments use their secret store.
DO $$
DECLARE
    service text;
BEGIN
    FOREACH service IN ARRAY ARRAY['bo_ingest', 'bo_projector', 'bo_api', 'bo_operator'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = service) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', service);
        END IF;
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = service || '_svc') THEN
            EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE %I', service || '_svc', service || '_svc',
                           service);
        END IF;
    END LOOP;
END $$;
