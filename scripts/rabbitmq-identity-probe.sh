#!/bin/bash
# Does RabbitMQ's MQTT plugin keep one device from disconnecting another?
# (docs/SCALING.md). Starts one RabbitMQ node with the MQTT plugin on free
# ports of 127.0.0.1 in a temporary folder (private HOME and epmd), adds two
# device logins with the narrowest rights RabbitMQ offers (vhost permissions
# on amq.topic and their own session queues, topic permissions on their own
# $aws/things/<name>/ topics) and a third with configure rights on every
# queue, then lets them connect with the victim's client id. Prints one line
# per attempt and stops the node. Needs rabbitmq-server and mosquitto-clients.
# Exit status: 0 when the run worked (whatever it found), 1 when it could not.
set -eu

RABBIT_BIN=/usr/lib/rabbitmq/bin
[ -x "$RABBIT_BIN/rabbitmq-server" ] || { echo "rabbitmq-server is not installed" >&2; exit 1; }
command -v mosquitto_sub >/dev/null || { echo "mosquitto-clients is not installed" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

DIR=$(mktemp -d /tmp/otter-rabbit-XXXXXX)
MQTT_PORT=$(free_port)
AMQP_PORT=$(free_port)
export HOME="$DIR/home" ERL_EPMD_PORT="$(free_port)"
export RABBITMQ_NODENAME="otterprobe@localhost" RABBITMQ_NODE_PORT="$AMQP_PORT"
export RABBITMQ_DIST_PORT="$(free_port)"
export RABBITMQ_CONFIG_FILE="$DIR/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/plugins"
export RABBITMQ_MNESIA_BASE="$DIR/mnesia" RABBITMQ_LOG_BASE="$DIR/log"
export RABBITMQ_PID_FILE="$DIR/pid" RABBITMQ_CONF_ENV_FILE="$DIR/none"
export RABBITMQ_ADVANCED_CONFIG_FILE="$DIR/advanced.config"
mkdir -p "$HOME" "$DIR/log"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$HOME/.erlang.cookie"
chmod 600 "$HOME/.erlang.cookie"
cat > "$DIR/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
mqtt.listeners.tcp.default = 127.0.0.1:$MQTT_PORT
mqtt.allow_anonymous = false
loopback_users = none
EOF
echo '[rabbitmq_mqtt].' > "$DIR/plugins"

NODE=""
VICTIM=""
cleanup() {
    [ -n "$VICTIM" ] && kill "$VICTIM" 2>/dev/null || true
    if [ -n "$NODE" ]; then
        timeout 30 "$RABBIT_BIN/rabbitmqctl" stop >/dev/null 2>&1 || kill -9 "$NODE" 2>/dev/null || true
    fi
    epmd -kill >/dev/null 2>&1 || true
    [ -n "${OTTER_KEEP:-}" ] && echo "kept $DIR" >&2 || rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

setsid "$RABBIT_BIN/rabbitmq-server" > "$DIR/server.out" 2>&1 &
NODE=$!
# The MQTT port opens last; rabbitmqctl await_startup returns before it.
i=0
until (echo > "/dev/tcp/127.0.0.1/$MQTT_PORT") 2>/dev/null; do
    i=$((i + 1))
    [ $i -le 240 ] || { echo "RabbitMQ did not open its MQTT port (OTTER_KEEP=1 keeps its log in $DIR/log)" >&2; exit 1; }
    sleep 0.5
done

CTL="$RABBIT_BIN/rabbitmqctl"
for u in devA devB; do
    "$CTL" add_user "$u" "pw-$u" >/dev/null
    q="^(amq\\.topic|mqtt-subscription-$u.*)\$"
    "$CTL" set_permissions -p / "$u" "$q" "$q" "$q" >/dev/null
    "$CTL" set_topic_permissions -p / "$u" amq.topic '^\$aws\.things\.{username}\.' \
        '^\$aws\.things\.{username}\.' >/dev/null
done
"$CTL" add_user devC pw-devC >/dev/null
"$CTL" set_permissions -p / devC '.*' '.*' '.*' >/dev/null
"$CTL" set_topic_permissions -p / devC amq.topic '^\$aws\.things\.{username}\.' \
    '^\$aws\.things\.{username}\.' >/dev/null

# The victim: reconnects by itself when it loses the connection; one CONNACK per connection.
stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -u devA -P pw-devA -i devA -q 1 \
    -t '$aws/things/devA/jobs/notify' -d > "$DIR/victim.out" 2>&1 &
VICTIM=$!
sleep 2
connacks() { grep -c "received CONNACK" "$DIR/victim.out" || true; }

attempt() { # what, user, password, extra mosquitto_pub options
    before=$(connacks)
    rc=0
    # shellcheck disable=SC2086
    timeout 5 mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -u "$2" -P "$3" -i devA $4 -q 1 \
        -t "\$aws/things/$2/jobs/x" -m hi > /dev/null 2>&1 || rc=$?
    sleep 2
    after=$(connacks)
    if [ "$after" -gt "$before" ]; then v="DISCONNECTED (it reconnected: CONNACKs $before -> $after)"
    else v="stayed connected (CONNACKs $after)"; fi
    printf '%-58s attacker exit %d; victim %s\n' "$1" "$rc" "$v"
}

echo "RabbitMQ $(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo '?'), client id devA held by devA:"
attempt "devB, wrong password, client id devA" devB wrong ""
attempt "devB, its own password, client id devA, clean session" devB pw-devB ""
attempt "devB, its own password, client id devA, persistent session" devB pw-devB "-c"
attempt "devC (configure on every queue), own password, client id devA" devC pw-devC "-c"
echo "(attacker exit: 0 connected and published; else the refusal code of its CONNACK: 3 server unavailable, 4 bad user name or password, 5 not authorised)"
echo "broker log, takeovers:"
grep -h "duplicate id\|cannot start\|cannot recover\|login failed" "$DIR"/log/*.log | cut -c12- || true
