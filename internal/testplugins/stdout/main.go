// Command stdout is a test plugin that breaks its handshake: it prints to
// stdout before serving, which a plugin must never do.
package main

import (
	"context"
	"fmt"

	"github.com/jumpwire-dev/jumpwire/sdk"
)

type driver struct{ sdk.Base }

func (d *driver) Exports() []sdk.Method {
	return []sdk.Method{sdk.Export("ok", func(context.Context) error { return nil }, "Do nothing")}
}

func main() {
	fmt.Println("hello")
	sdk.Serve(sdk.Plugin{Version: "test", Drivers: []sdk.Type{{
		Name: "stdout",
		New:  sdk.Factory(func(struct{}) (*driver, error) { return &driver{}, nil }),
	}}})
}
