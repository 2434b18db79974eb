#!/bin/sh
# The mosquitto service's entrypoint: build the password file from the service accounts'
# passwords in the environment (MQTT_<ACCOUNT>_PASSWORD; an unset one leaves that account out)
# and the gateways' hashed entries (gateways.passwd, made with mosquitto_passwd), then run the
# broker. Paths can be moved with MOSQUITTO_CONFIG, MOSQUITTO_PASSWORD_FILE, MOSQUITTO_GATEWAYS.
set -eu
config=${MOSQUITTO_CONFIG:-/mosquitto/config/mosquitto.conf}
file=${MOSQUITTO_PASSWORD_FILE:-/mosquitto/run/passwd}
gateways=${MOSQUITTO_GATEWAYS:-/mosquitto/deploy/gateways.passwd}

umask 077
if [ -f "$gateways" ]; then
    cp "$gateways" "$file"
else
    : > "$file"
fi
for account in ingest scheduler alerts modbus simulator healthcheck; do
    variable="MQTT_$(echo "$account" | tr '[:lower:]' '[:upper:]')_PASSWORD"
    password=$(printenv "$variable" || true)
    if [ -n "$password" ]; then
        mosquitto_passwd -b "$file" "$account" "$password"
    fi
done
if [ "$(id -u)" = 0 ]; then  # mosquitto drops to its own user before it reads the file
    chown mosquitto:mosquitto "$file"
fi
exec mosquitto -c "$config"
