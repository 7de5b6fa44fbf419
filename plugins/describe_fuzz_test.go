package plugins

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// FuzzDescribeAnswer: whatever a plugin answers to Describe (two binaries
// answering the same bytes, so that every name is provided twice), the
// catalog never panics: it lists the binaries, finds every type and alias
// they name, reports the duplicates, and caches the answer so that it
// reads back the same.
func FuzzDescribeAnswer(f *testing.F) {
	seed := func(m *pluginv1.DescribeResponse) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(&pluginv1.DescribeResponse{SdkVersion: "0.1.0", Version: "1.2.3",
		Types: []*pluginv1.DriverType{{Name: "power", Aliases: []string{"jumpstarter_driver_power.driver.MockPower"}}}})
	seed(&pluginv1.DescribeResponse{Version: "not semver", ProtocolMinor: 1 << 31,
		Types: []*pluginv1.DriverType{{Name: ""}, {Name: "a", Aliases: []string{"a", "a", ""}}, nil}})
	f.Add([]byte{0x2a, 0x00, 0x2a, 0x02, 0x0a, 0x00}) // empty types
	f.Add([]byte{0x1b, 0x1b, 0x1b, 0x1c, 0x1c, 0x1c}) // groups
	f.Fuzz(func(t *testing.T, answer []byte) {
		info := &pluginv1.DescribeResponse{}
		// As the host receives it, through the protocol's codec.
		if protocol.Codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(answer)}, info) != nil {
			return // the host's Describe call fails: the binary is a failure
		}
		dir := t.TempDir()
		a := writeBin(t, dir, Prefix+"a", "a")
		b := writeBin(t, dir, Prefix+"b", "b")
		c := New([]string{dir}, func(context.Context, string) (*pluginv1.DescribeResponse, error) {
			return proto.Clone(info).(*pluginv1.DescribeResponse), nil
		}, WithCacheDir(filepath.Join(t.TempDir(), "cache")), WithRuntimeDir(filepath.Join(t.TempDir(), "run")))
		entries, failures := c.Entries(t.Context())
		if len(entries) != 2 || len(failures) != 0 {
			t.Fatalf("%d entries, failures %v; want the 2 binaries", len(entries), failures)
		}
		_ = c.Duplicates(t.Context())
		for _, e := range entries {
			_, _ = e.Protocol(), e.NewerProtocol()
			for _, typ := range info.GetTypes() {
				for _, name := range append([]string{typ.GetName()}, typ.GetAliases()...) {
					got, dt, err := c.Lookup(t.Context(), name, Pin{})
					if err != nil || dt == nil || (got.Binary != a && got.Binary != b) {
						t.Fatalf("%q is provided, Lookup says %v", name, err)
					}
				}
			}
		}
		// The cache keeps what the host knows of the answer (JSON drops
		// unknown fields).
		want := clearUnknown(proto.Clone(info))
		if back := readCache(c.cacheDir, entries[0].SHA256); back != nil && !proto.Equal(back, want) {
			t.Fatalf("the cached answer reads back as %v, not %v", back, want)
		}
	})
}

// clearUnknown drops m's unknown fields, at every depth.
func clearUnknown(m proto.Message) proto.Message {
	var clear func(protoreflect.Message)
	clear = func(r protoreflect.Message) {
		r.SetUnknown(nil)
		r.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := range v.List().Len() {
					clear(v.List().Get(i).Message())
				}
			case fd.Message() != nil && !fd.IsMap():
				clear(v.Message())
			}
			return true
		})
	}
	clear(m.ProtoReflect())
	return m
}
