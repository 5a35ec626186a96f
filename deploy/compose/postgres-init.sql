-- One database and one user per service, as in production: no service can read another's
-- data. Evaluation passwords; production takes its URLs from Secrets (helm/pmp-ftm).
CREATE USER registry WITH PASSWORD 'registry-eval';
CREATE DATABASE registry OWNER registry;
CREATE USER certstore WITH PASSWORD 'certstore-eval';
CREATE DATABASE certstore OWNER certstore;
CREATE USER ftm WITH PASSWORD 'ftm-eval';
CREATE DATABASE ftm OWNER ftm;
REVOKE CONNECT ON DATABASE registry, certstore, ftm FROM PUBLIC;
