package main

import (
	"fmt"
	"os"
	"strings"
)

// passphraseEnv is the environment variable holding the passphrase, for
// `jw run` on TCP and for clients, when no flag gives it.
const passphraseEnv = "JUMPWIRE_PASSPHRASE"

// readPassphrase reads a passphrase file: its first line, without the line end.
func readPassphrase(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--passphrase-file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", fmt.Errorf("--passphrase-file %s: the first line is empty", path)
	}
	return line, nil
}
