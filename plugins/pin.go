package plugins

import (
	"errors"
	"fmt"
	"strings"
)

// Pin restricts which binary may provide a driver instance: an instance's
// `sha256:` and `version:` keys. Zero fields pin nothing.
type Pin struct {
	// SHA256 is the hex sha256 (lowercase) the binary's content must have.
	SHA256 string
	// Version is the version the binary must report; a leading "v" is
	// optional on either side ("v1.2.0" matches "1.2.0").
	Version string
}

// The pins a PinError is about: the instance keys that set them.
const (
	PinSHA256  = "sha256"
	PinVersion = "version"
)

// ErrPinMismatch is returned (wrapped, as a *PinError) when no binary
// matches an instance's pins.
var ErrPinMismatch = errors.New("no plugin binary matches the pin")

// Found is what one binary has where a pin wants something else.
type Found struct {
	Binary string // the binary's path
	Value  string // its sha256 or version ("" when it reports none)
}

// PinError is a pin that no binary providing the type matches.
type PinError struct {
	// Type is the driver type asked for; "" for an instance's `plugin:`.
	Type string
	// Key is the pin: PinSHA256 or PinVersion.
	Key string
	// Want is the pinned value.
	Want string
	// Found lists what the candidates have instead.
	Found []Found
}

// Error names the binaries, what they have and what the config pins, e.g.
// "plugin /p/jumpwire-driver-power has sha256 abcd..., the config pins 1234...".
func (e *PinError) Error() string {
	has := func(f Found) string {
		if f.Value == "" {
			return fmt.Sprintf("%s has no %s", f.Binary, e.Key)
		}
		return fmt.Sprintf("%s has %s %s", f.Binary, e.Key, f.Value)
	}
	if len(e.Found) == 1 {
		return fmt.Sprintf("plugin %s, the config pins %s", has(e.Found[0]), e.Want)
	}
	parts := make([]string, len(e.Found))
	for i, f := range e.Found {
		parts[i] = has(f)
	}
	return fmt.Sprintf("no plugin providing %q has %s %s, which the config pins: %s",
		e.Type, e.Key, e.Want, strings.Join(parts, "; "))
}

// Unwrap returns ErrPinMismatch.
func (e *PinError) Unwrap() error { return ErrPinMismatch }

// filter keeps the candidates matching p, in order, or explains why none does.
func (p Pin) filter(name string, cands []*Entry) ([]*Entry, error) {
	if p.SHA256 != "" {
		var keep []*Entry
		var found []Found
		for _, e := range cands {
			if e.SHA256 == p.SHA256 {
				keep = append(keep, e)
			}
			found = append(found, Found{Binary: e.Binary, Value: e.SHA256})
		}
		if len(keep) == 0 {
			return nil, &PinError{Type: name, Key: PinSHA256, Want: p.SHA256, Found: found}
		}
		cands = keep
	}
	if p.Version != "" {
		var keep []*Entry
		var found []Found
		for _, e := range cands {
			if sameVersion(e.Info.GetVersion(), p.Version) {
				keep = append(keep, e)
			}
			found = append(found, Found{Binary: e.Binary, Value: e.Info.GetVersion()})
		}
		if len(keep) == 0 {
			return nil, &PinError{Type: name, Key: PinVersion, Want: p.Version, Found: found}
		}
		cands = keep
	}
	return cands, nil
}

// sameVersion reports whether a binary's version is the pinned one: equal
// but for a leading "v".
func sameVersion(have, want string) bool {
	have, want = strings.TrimSpace(have), strings.TrimSpace(want)
	return have != "" && strings.TrimPrefix(have, "v") == strings.TrimPrefix(want, "v")
}
