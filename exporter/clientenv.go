package exporter

import (
	"os"
	"path/filepath"
)

// Environment variables a shell or hook started for a local exporter gets,
// named and valued as upstream Jumpstarter sets them (see WIRE.md, Local
// access), so that its clients work there unchanged.
const (
	// HostEnv holds the exporter's unix socket as a bare path: upstream's
	// client builds the unix:// URL itself and fails on anything else.
	HostEnv = "JUMPSTARTER_HOST"
	// DriversAllowEnv lists the client classes a Jumpstarter client may
	// load; UNSAFE allows any class the report names, as upstream's local
	// shell does (without it every driver is a stub on the client side).
	DriversAllowEnv = "JMP_DRIVERS_ALLOW"
)

// ClientEnv is the environment for a process that should reach the exporter
// at the unix socket sock: the current environment with HostEnv set to sock,
// DriversAllowEnv set to UNSAFE and the directory of the running executable
// (jw) first on PATH, so that `jw` and upstream's `j` both work in it.
func ClientEnv(sock string) []string {
	env := append(os.Environ(), HostEnv+"="+sock, DriversAllowEnv+"=UNSAFE")
	if exe, err := os.Executable(); err == nil {
		path := filepath.Dir(exe)
		if old := os.Getenv("PATH"); old != "" {
			path += string(os.PathListSeparator) + old
		}
		env = append(env, "PATH="+path)
	}
	return env
}
