// Command badexport is a test plugin whose driver exports a method with a
// signature the SDK refuses, so the plugin exits before its handshake,
// saying why on stderr.
package main

import (
	"github.com/jumpwire-dev/jumpwire/sdk"
)

type driver struct{ sdk.Base }

// Exports exports a method that lacks its context.Context parameter.
func (d *driver) Exports() []sdk.Method {
	return []sdk.Method{sdk.Export("set", d.Set, "Set a value")}
}

func (d *driver) Set(n int) error { return nil }

func main() {
	sdk.Serve(sdk.Plugin{Version: "test", Drivers: []sdk.Type{{
		Name: "badexport",
		New:  sdk.Factory(func(struct{}) (*driver, error) { return &driver{}, nil }),
	}}})
}
