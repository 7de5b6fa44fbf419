package sdk

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
)

// fuzzConfig is a driver config with one of each kind of field the codec handles. Its slices and maps
// have no omitempty: an empty one would encode as nothing and decode as nil, which is not equal.
type fuzzConfig struct {
	*CodecExportedBase
	Port    codecPort          `json:"port"`
	Baud    uint32             `json:"baudrate,omitempty"`
	Gain    float32            `json:"gain"`
	Offset  int8               `json:"offset"`
	Timeout time.Duration      `json:"timeout"`
	At      time.Time          `json:"at,omitzero"`
	Ports   []codecPort        `json:"ports"`
	Labels  map[string]string  `json:"labels"`
	IDs     map[uint16]bool    `json:"ids"`
	Extra   any                `json:"extra"`
	Opt     *int64             `json:"opt"`
	Level   codecLevel         `json:"level"`
	Point   *codecPoint        `json:"point"`
	Raw     json.RawMessage    `json:"raw,omitempty"` // nil encodes as null, which decodes as "null"
	Fixed   [2]float64         `json:"fixed"`
	Count   uint64             `json:"count,string"`
	Nested  map[string][]*bool `json:"nested"`
}

// FuzzDecodeValue feeds arbitrary JSON to the decoder: it must never panic, must fail only with a
// *ValueError under the given path, and what it decodes must survive encoding and decoding again.
func FuzzDecodeValue(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`null`,
		`{"name":"psu","port":{"host":"h","port":22},"baudrate":115200,"gain":0.1,"offset":-128,` +
			`"timeout":"1.5s","at":"2024-01-02T03:04:05.123+00:00","ports":[{"host":"a"}],"labels":{"a":"b"},` +
			`"ids":{"7":true},"extra":[1,"x",null,{"y":false}],"opt":5,"level":"high","point":[1,2],` +
			`"raw":{"z":[1e300]},"fixed":[1,-0.5],"count":"18446744073709551615","nested":{"a":[true,null]}}`,
		`{"baudrate":1.5}`,
		`{"baudrate":4294967296}`,
		`{"timeout":1e-10,"at":"2024-01-02T03:04:05+05:45"}`,
		`{"port":{"hots":"x"}}`,
		`{"ids":{"70000":true}}`,
		`[1,2,3]`,
		`"1h2m3.5s"`,
		`{"a":{"b":{"c":[[[]]]}}}`,
	} {
		f.Add([]byte(seed))
	}
	targets := []reflect.Type{
		reflect.TypeFor[fuzzConfig](),
		reflect.TypeFor[*fuzzConfig](),
		reflect.TypeFor[[]codecPort](),
		reflect.TypeFor[map[string][]int16](),
		reflect.TypeFor[time.Duration](),
		reflect.TypeFor[any](),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var x any
		if json.Unmarshal(data, &x) != nil {
			return
		}
		src, err := structpb.NewValue(x)
		if err != nil {
			return
		}
		for _, typ := range targets {
			first := reflect.New(typ).Elem()
			if err := decodeValue(src, first, "fuzz"); err != nil {
				var ve *ValueError
				if !errors.As(err, &ve) || !strings.HasPrefix(ve.Path, "fuzz") {
					t.Fatalf("decoding %s into %v: error %q is not a *ValueError under the path", data, typ, err)
				}
				continue
			}
			enc, err := encodeValue(first)
			if err != nil {
				t.Fatalf("decoded %s into %v as %#v, which does not encode: %v", data, typ, first.Interface(), err)
			}
			second := reflect.New(typ).Elem()
			if err := decodeValue(enc, second, "fuzz"); err != nil {
				t.Fatalf("decoded %s into %v, encoded as %s, which does not decode: %v", data, typ, canonical(t, enc), err)
			}
			if !reflect.DeepEqual(first.Interface(), second.Interface()) {
				t.Fatalf("decoded %s into %v:\n first %#v\nsecond %#v (through %s)",
					data, typ, first.Interface(), second.Interface(), canonical(t, enc))
			}
		}
	})
}
