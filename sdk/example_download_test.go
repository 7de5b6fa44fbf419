package sdk_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/jumpwire-dev/jumpwire/sdk"
	"github.com/jumpwire-dev/jumpwire/sdk/sdktest"
)

// Card is a flasher whose device holds a short text.
type Card struct{ sdk.Base }

// Exports lists dump, which writes to a client's resource.
func (c *Card) Exports() []sdk.Method {
	return []sdk.Method{
		sdk.Export("dump", func(ctx context.Context, target sdk.Download, partition *string) (int64, error) {
			return io.Copy(target, strings.NewReader("boot\nroot\n"))
		}, "Send the card's content to the client"),
	}
}

// A method takes the resource a client receives into as an sdk.Download;
// in tests, sdktest's Download plays the exporter's part: it returns the
// handle a client would pass and collects what the method writes.
func ExampleDownload() {
	card := sdk.Type{
		Name:   "card",
		Client: "jumpstarter_driver_opendal.client.FlasherClient",
		New:    sdk.Factory(func(struct{}) (*Card, error) { return &Card{}, nil }),
	}
	ctx := context.Background()
	d, err := sdktest.Open(ctx, card, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close(ctx)

	var got strings.Builder
	handle, wait, err := d.Download(ctx, &got)
	if err != nil {
		fmt.Println(err)
		return
	}
	n, err := d.Call(ctx, "dump", handle, nil)
	fmt.Println(n, err, wait())
	fmt.Printf("%q\n", got.String())

	// Output:
	// 10 <nil> <nil>
	// "boot\nroot\n"
}
