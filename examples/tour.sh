#!/usr/bin/env sh
# A short tour of jumpwire: start the simulated demo board (a serial console
# on a pseudo-terminal and an HTTP service), a local exporter on the given
# config, show the driver tree, switch the power on and read it, talk to the
# board's console and its web service, then (in a terminal) leave you in a
# shell connected to the exporter. `make demo` runs this.
set -eu
config=${1:-examples/exporter.yaml}

boardlog=$(mktemp)
jumpwire-demo-board --tty /tmp/jumpwire-demo/tty --http 127.0.0.1:18080 >"$boardlog" 2>&1 &
board=$!
trap 'kill "$board" 2>/dev/null || true; wait "$board" 2>/dev/null || true; rm -f "$boardlog"' EXIT
trap 'exit 130' INT TERM
i=0
until grep -q '^http on' "$boardlog"; do
	i=$((i + 1))
	if [ "$i" -gt 50 ] || ! kill -0 "$board" 2>/dev/null; then
		echo "tour: the demo board did not start:" >&2
		cat "$boardlog" >&2
		exit 1
	fi
	sleep 0.1
done

jw shell -c "$config" -- sh -eu -c '
step() { printf "\n\033[1m\$ %s\033[0m\n" "$*"; "$@"; }
step jw tree
step jw power on
step jw power read
step jw dut power read
step jw power off
step jw status
# A serial stream lasts until the client goes away: end it after a second of quiet.
step sh -c "printf \"root\\runame -a\\r\" | jw pipe --idle 1s dut.serial"
step sh -c "printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | jw pipe dut.web"
'
if [ -t 0 ] && [ -t 1 ]; then
	printf "\nNow a shell with the exporter at \$JUMPSTARTER_HOST: try jw tree, jw power on,\n"
	printf "jw console dut.serial (leave with Ctrl-B three times), jw forward tcp 8080 dut.web.\n"
	printf "Leave the shell with exit.\n"
	jw shell -c "$config"
fi
