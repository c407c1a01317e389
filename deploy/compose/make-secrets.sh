#!/bin/sh
# Writes the compose stack's secrets into deploy/compose/secrets/ (random; the folder is 700, the files 644 because compose bind-mounts them into containers of other uids), keeping any
# that exist. Replace slack_webhook_url, pagerduty_routing_key and smtp_password with real ones.
set -eu
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "$dir"
chmod 700 "$dir"
rand() { head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | cut -c1-"$1"; }
put() { [ -s "$dir/$1" ] || { printf '%s' "$2" > "$dir/$1"; echo "wrote secrets/$1"; }; }
put postgres_password "$(rand 32)"
put database_url "postgres://xray:$(cat "$dir/postgres_password")@postgres:5432/xray"
put s3_access_key "xray$(rand 12)"
put s3_secret_key "$(rand 40)"
put admin_key "xk_$(rand 40)"
put metrics_token "$(rand 40)"
put service_token_secret "$(rand 48)"
put patient_salt "$(rand 48)"
put session_secret "$(rand 48)"
put grafana_admin_password "$(rand 24)"
put slack_webhook_url "https://hooks.slack.com/services/REPLACE/ME/NOW"
put pagerduty_routing_key "replace-with-your-pagerduty-integration-key"
put smtp_password "replace-me"
# The containers run as uid 10001 (platform), 999 (postgres) and others: compose mounts secret files
# with their host mode, so they must be readable inside the containers.
chmod 644 "$dir"/*
