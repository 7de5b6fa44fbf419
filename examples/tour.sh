#!/usr/bin/env sh
# A short tour of jumpwire: start a local exporter on the given config, show
# the driver tree, switch the power on and read it, then (in a terminal) leave
# you in a shell connected to the exporter. `make demo` runs this.
set -eu
config=${1:-examples/exporter.yaml}

jw shell -c "$config" -- sh -eu -c '
step() { printf "\n\033[1m\$ %s\033[0m\n" "$*"; "$@"; }
step jw tree
step jw power on
step jw power read
step jw dut power read
step jw power off
step jw status
'
if [ -t 0 ] && [ -t 1 ]; then
	printf "\nNow a shell with the exporter at \$JUMPSTARTER_HOST: try jw tree, jw power on, jw dut power read. Leave with exit.\n"
	exec jw shell -c "$config"
fi
