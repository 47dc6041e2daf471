#!/bin/sh
# Runs once, when the data volume is new (the image's /docker-entrypoint-initdb.d): the warehouse
# and Dagster databases and the platform's login roles, with the passwords of the secret files.
#
# The roles are created as latam_owner (a CREATEROLE role, not a superuser), with the attributes
# the migrations give them (0011, 0033): PostgreSQL then makes the owner their admin, so
# `latam migrate`, which logs in as the owner, can set their defaults and grants. The migrations
# only create a role when it is missing, so these keep their passwords.
set -eu
pw() { tr -d '\n' < "/run/secrets/$1"; }
psql -v ON_ERROR_STOP=1 --username postgres --dbname postgres \
  -v owner_pw="$(pw pg_owner_password)" \
  -v pipeline_pw="$(pw pg_pipeline_password)" \
  -v exporter_pw="$(pw pg_exporter_password)" \
  -v api_pw="$(pw pg_api_password)" \
  -v dagster_pw="$(pw pg_dagster_password)" <<'SQL'
CREATE ROLE latam_owner LOGIN CREATEROLE PASSWORD :'owner_pw';
CREATE ROLE dagster LOGIN PASSWORD :'dagster_pw';
SET ROLE latam_owner;
CREATE ROLE latam_pipeline LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION
    PASSWORD :'pipeline_pw';
CREATE ROLE latam_exporter LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION
    PASSWORD :'exporter_pw';
CREATE ROLE latam_api_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION
    CONNECTION LIMIT 200 PASSWORD :'api_pw';
RESET ROLE;
CREATE DATABASE latam OWNER latam_owner;
CREATE DATABASE latam_dagster OWNER dagster;
REVOKE ALL ON DATABASE latam_dagster FROM PUBLIC;
SQL
