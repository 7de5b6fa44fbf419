package sdk_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/jumpwire-dev/jumpwire/sdk"
	"github.com/jumpwire-dev/jumpwire/sdk/sdktest"
)

// LineCounter is a flasher that counts the lines of the images it is given.
type LineCounter struct{ sdk.Base }

// Exports lists flash, which takes an upload.
func (c *LineCounter) Exports() []sdk.Method {
	return []sdk.Method{
		sdk.Export("flash", func(ctx context.Context, image sdk.Resource, target *string) (int, error) {
			b, err := io.ReadAll(image)
			return strings.Count(string(b), "\n"), err
		}, "Count the lines of an image"),
	}
}

// A method takes a client's upload as an sdk.Resource; in tests,
// sdktest's Upload plays the exporter's part and returns the handle a
// client would pass.
func ExampleResource() {
	counter := sdk.Type{
		Name:   "counter",
		Client: "jumpstarter_driver_opendal.client.FlasherClient",
		New:    sdk.Factory(func(struct{}) (*LineCounter, error) { return &LineCounter{}, nil }),
	}
	ctx := context.Background()
	d, err := sdktest.Open(ctx, counter, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close(ctx)

	handle, wait, err := d.Upload(ctx, strings.NewReader("one\ntwo\nthree\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	lines, err := d.Call(ctx, "flash", handle, nil)
	fmt.Println(lines, err, wait())

	// Output:
	// 3 <nil> <nil>
}
