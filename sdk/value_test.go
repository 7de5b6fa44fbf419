package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// Types a driver author might write, for the codec tests.

type codecPort struct {
	Host string `json:"host"`
	Port uint16 `json:"port,omitempty"`
}

type codecBase struct {
	Name  string `json:"name" doc:"Instance name"`
	Debug bool   `json:"debug,omitempty"`
}

type codecConfig struct {
	codecBase
	URL      string            `json:"url" doc:"Where the device is"`
	Baudrate int               `json:"baudrate,omitempty" doc:"Line speed"`
	Timeout  time.Duration     `json:"timeout,omitzero"`
	Ports    []codecPort       `json:"ports,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Count    int64             `json:"count,string,omitempty"`
	Secret   string            `json:"-"`
	private  int
}

// CodecExportedBase is embedded by pointer; it must be exported for decoding to allocate it.
type CodecExportedBase struct {
	Name string `json:"name"`
}

type codecEmbedPtr struct {
	*CodecExportedBase
	Extra int `json:"extra"`
}

type codecEmbedUnexportedPtr struct {
	*codecBase
}

type codecA struct {
	X int
	Y int
}

type codecB struct {
	X int
	Y int `json:"Y"`
}

// codecConflict embeds two structs that both have an "X" at the same depth (neither wins) and a "Y"
// (the tagged one wins).
type codecConflict struct {
	codecA
	codecB
	Z int `json:"z"`
}

// codecShadow's own Y hides the embedded one.
type codecShadow struct {
	codecA
	Y string
}

// codecLevel is an enum carried as a string.
type codecLevel int

var codecLevelNames = []string{"low", "high"}

func (l codecLevel) MarshalText() ([]byte, error) { return []byte(codecLevelNames[l]), nil }

func (l *codecLevel) UnmarshalText(b []byte) error {
	for i, n := range codecLevelNames {
		if n == string(b) {
			*l = codecLevel(i)
			return nil
		}
	}
	return fmt.Errorf("unknown level %q; use low or high", b)
}

// codecPoint travels as [x, y]; its methods have pointer receivers.
type codecPoint struct{ X, Y int }

func (p *codecPoint) MarshalJSON() ([]byte, error) { return json.Marshal([2]int{p.X, p.Y}) }

func (p *codecPoint) UnmarshalJSON(b []byte) error {
	var xy [2]int
	if err := json.Unmarshal(b, &xy); err != nil {
		return fmt.Errorf("point: want [x, y], got %s", b)
	}
	p.X, p.Y = xy[0], xy[1]
	return nil
}

type codecBroken struct{}

func (codecBroken) MarshalJSON() ([]byte, error) { return nil, errors.New("broken") }

type codecNode struct {
	Next *codecNode `json:"next"`
}

type codecQuoted struct {
	N *int64  `json:"n,string"`
	F float32 `json:"f,string"`
	B bool    `json:"b,string"`
	S string  `json:"s,string"`
}

// parseValue parses JSON into a Value; "" stands for a nil *structpb.Value.
func parseValue(t testing.TB, s string) *structpb.Value {
	t.Helper()
	if s == "" {
		return nil
	}
	v := new(structpb.Value)
	if err := protojson.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	return v
}

// canonical renders a Value as compact JSON with sorted keys.
func canonical(t testing.TB, v *structpb.Value) string {
	t.Helper()
	b, ok := appendJSON(nil, v)
	if !ok {
		t.Fatalf("value %v is not JSON", v)
	}
	return string(b)
}

func intPtr(n int) *int { return &n }

func TestEncodeValue(t *testing.T) {
	n := int64(42)
	pp := &n
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"nil interface", nil, `null`},
		{"nil pointer", (*int)(nil), `null`},
		{"nil slice", []int(nil), `null`},
		{"nil map", map[string]int(nil), `null`},
		{"bool", true, `true`},
		{"int8", int8(-8), `-8`},
		{"int64 at 2^53", int64(1 << 53), `9007199254740992`},
		{"uint8", uint8(255), `255`},
		{"uint64", uint64(1 << 40), `1099511627776`},
		{"uintptr", uintptr(7), `7`},
		{"float32", float32(1.5), `1.5`},
		{"float64", -0.25, `-0.25`},
		{"string", "héllo \"x\"", `"héllo \"x\""`},
		{"pointer to pointer", &pp, `42`},
		{"slice", []int{1, 2}, `[1,2]`},
		{"empty slice", []int{}, `[]`},
		{"array", [2]string{"a", "b"}, `["a","b"]`},
		{"byte array is a list", [2]byte{1, 2}, `[1,2]`},
		{"slice of any", []any{nil, 1, "x", []int{2}}, `[null,1,"x",[2]]`},
		{"map", map[string]int{"a": 1, "b": 2}, `{"a":1,"b":2}`},
		{"map with int keys", map[int]string{1: "a", -2: "b"}, `{"-2":"b","1":"a"}`},
		{"map with text keys", map[codecLevel]int{1: 5}, `{"high":5}`},
		{"struct", codecConfig{
			codecBase: codecBase{Name: "psu", Debug: true},
			URL:       "tcp://lab:5025",
			Baudrate:  9600,
			Timeout:   1500 * time.Millisecond,
			Ports:     []codecPort{{Host: "a", Port: 22}, {Host: "b"}},
			Labels:    map[string]string{"zone": "1"},
			Count:     7,
			Secret:    "hidden",
			private:   1,
		}, `{"baudrate":9600,"count":"7","debug":true,"labels":{"zone":"1"},"name":"psu",` +
			`"ports":[{"host":"a","port":22},{"host":"b"}],"timeout":"1.5s","url":"tcp://lab:5025"}`},
		{"struct with omitempty and omitzero fields empty", codecConfig{}, `{"name":"","url":""}`},
		{"pointer to struct", &codecPort{Host: "h"}, `{"host":"h"}`},
		{"embedded pointer nil", codecEmbedPtr{Extra: 1}, `{"extra":1}`},
		{"embedded pointer set", codecEmbedPtr{CodecExportedBase: &CodecExportedBase{Name: "n"}, Extra: 1},
			`{"extra":1,"name":"n"}`},
		{"embedded conflicts", codecConflict{codecA{1, 2}, codecB{3, 4}, 5}, `{"Y":4,"z":5}`},
		{"embedded shadowed", codecShadow{codecA{1, 2}, "top"}, `{"X":1,"Y":"top"}`},
		{"quoted fields", codecQuoted{N: &n, F: 0.1, B: true, S: "a\"b"},
			`{"b":"true","f":"0.1","n":"42","s":"\"a\\\"b\""}`},
		{"quoted nil pointer", codecQuoted{}, `{"b":"false","f":"0","n":null,"s":"\"\""}`},
		{"duration", 1500 * time.Millisecond, `"1.5s"`},
		{"negative duration", -90 * time.Second, `"-1m30s"`},
		{"time", time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC), `"2024-01-02T03:04:05.000000006Z"`},
		{"time with offset", time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600)), `"2024-01-02T03:04:05+01:00"`},
		{"MarshalJSON on pointer, value not addressable", codecPoint{1, 2}, `[1,2]`},
		{"MarshalJSON on pointer", &codecPoint{3, 4}, `[3,4]`},
		{"MarshalJSON in a field", struct {
			P codecPoint `json:"p"`
		}{codecPoint{5, 6}}, `{"p":[5,6]}`},
		{"raw JSON", json.RawMessage(`{"b": 1e3, "a": [true]}`), `{"a":[true],"b":1000}`},
		{"TextMarshaler", codecLevel(1), `"high"`},
		{"structpb.Value", structpb.NewStringValue("x"), `"x"`},
		{"structpb.Struct", &structpb.Struct{Fields: map[string]*structpb.Value{"a": structpb.NewNumberValue(1)}}, `{"a":1}`},
		{"structpb.ListValue", &structpb.ListValue{Values: []*structpb.Value{structpb.NewBoolValue(false)}}, `[false]`},
		{"nil structpb.Value", (*structpb.Value)(nil), `null`},
		{"any holding special types", []any{time.Second, codecLevel(0), structpb.NewBoolValue(true), codecPoint{7, 8}},
			`["1s","low",true,[7,8]]`},
		{"map of any", map[string]any{"a": []any{1.5, map[string]any{"b": nil}}}, `{"a":[1.5,{"b":null}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeValue(reflect.ValueOf(tt.in))
			if err != nil {
				t.Fatalf("encodeValue(%#v): %v", tt.in, err)
			}
			if s := canonical(t, got); s != tt.want {
				t.Errorf("encodeValue(%#v)\n got %s\nwant %s", tt.in, s, tt.want)
			}
		})
	}
}

func TestEncodeValuePassesProtobufValuesThrough(t *testing.T) {
	v := structpb.NewStringValue("x")
	got, err := encodeValue(reflect.ValueOf(v))
	if err != nil || got != v {
		t.Errorf("encodeValue(*structpb.Value) = %p, %v; want the same pointer %p", got, err, v)
	}
	got, err = encodeValue(reflect.Value{})
	if err != nil || canonical(t, got) != "null" {
		t.Errorf("encodeValue(no value) = %v, %v; want null", got, err)
	}
}

func TestEncodeValueErrors(t *testing.T) {
	cycle := &codecNode{}
	cycle.Next = cycle
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"NaN", math.NaN(), "cannot encode NaN: JSON numbers must be finite"},
		{"infinity in a list in a struct", struct {
			Gains []float64 `json:"gains"`
		}{[]float64{1, math.Inf(1)}}, "gains[1]: cannot encode +Inf: JSON numbers must be finite"},
		{"quoted NaN", codecQuoted{F: float32(math.Inf(-1))}, "f: cannot encode -Inf: JSON numbers must be finite"},
		{"bytes", []byte("hi"), "cannot encode []byte: bytes are not a valid value; use a string, or a byte stream for binary data"},
		{"bytes in a map", map[string]any{"data": []byte("hi")},
			"data: cannot encode []byte: bytes are not a valid value; use a string, or a byte stream for binary data"},
		{"channel", make(chan int), "cannot encode chan int: it has no JSON form"},
		{"complex", complex(1, 2), "cannot encode complex128: it has no JSON form"},
		{"function in a map", map[string]any{"odd key": func() {}}, `["odd key"]: cannot encode func(): it has no JSON form`},
		{"bool map keys", map[bool]int{true: 1},
			"cannot encode map[bool]int: map keys must be strings, integers or implement encoding.TextMarshaler"},
		{"invalid UTF-8", "a\xffb", `cannot encode string "a\xffb": it is not valid UTF-8`},
		{"invalid UTF-8 key", map[string]int{"\xfe": 1}, `cannot encode key "\xfe": it is not valid UTF-8`},
		{"year out of range", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
			"cannot encode time 10000-01-01 00:00:00 +0000 UTC: RFC 3339 has only the years 0 to 9999"},
		{"failing MarshalJSON", []codecBroken{{}}, "[0]: sdk.codecBroken.MarshalJSON: broken"},
		{"invalid JSON from MarshalJSON", json.RawMessage(`{`), "json.RawMessage.MarshalJSON returned invalid JSON: unexpected end of JSON input"},
		{"pointer cycle", cycle, strings.Repeat("next.", 15) + "next...: value nests more than 1000 levels deep; is there a pointer cycle?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeValue(reflect.ValueOf(tt.in))
			if err == nil {
				t.Fatalf("encodeValue(%#v) = %v; want error %q", tt.in, got, tt.want)
			}
			var ve *ValueError
			if !errors.As(err, &ve) {
				t.Errorf("error %v is a %T; want *ValueError", err, err)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %q\nwant %q", err, tt.want)
			}
		})
	}
}

func TestDecodeValue(t *testing.T) {
	n := int64(-3)
	tests := []struct {
		name string
		src  string         // JSON; "" is a nil *structpb.Value
		dst  func() any     // a pointer to decode into, maybe pre-filled
		want any            // what it points to afterwards
		cmp  func(any) bool // instead of want, for values DeepEqual cannot compare
	}{
		{"null into pointer", `null`, func() any { return new(intPtr(5)) }, (*int)(nil), nil},
		{"nil Value into pointer", ``, func() any { return new(intPtr(5)) }, (*int)(nil), nil},
		{"null into slice", `null`, func() any { return &[]int{1} }, []int(nil), nil},
		{"null into map", `null`, func() any { return &map[string]int{"a": 1} }, map[string]int(nil), nil},
		{"null into any", `null`, func() any { var a any = 1; return &a }, nil, nil},
		{"null into non-empty interface", `null`, func() any { var s fmt.Stringer = time.Second; return &s }, fmt.Stringer(nil), nil},
		{"number into pointer allocates", `5`, func() any { return new(*int) }, intPtr(5), nil},
		{"int8 min", `-128`, func() any { return new(int8) }, int8(-128), nil},
		{"uint8 max", `255`, func() any { return new(uint8) }, uint8(255), nil},
		{"int64 at 2^53", `9007199254740992`, func() any { return new(int64) }, int64(1 << 53), nil},
		{"integral float", `3.0`, func() any { return new(int) }, 3, nil},
		{"float32", `1.5`, func() any { return new(float32) }, float32(1.5), nil},
		{"float64", `1e300`, func() any { return new(float64) }, 1e300, nil},
		{"string", `"héllo"`, func() any { return new(string) }, "héllo", nil},
		{"bool", `true`, func() any { return new(bool) }, true, nil},
		{"slice", `[1,2]`, func() any { return new([]int) }, []int{1, 2}, nil},
		{"slice is replaced", `[3]`, func() any { return &[]int{1, 2} }, []int{3}, nil},
		{"empty list", `[]`, func() any { return new([]string) }, []string{}, nil},
		{"array", `[1,2]`, func() any { return &[2]int{8, 9} }, [2]int{1, 2}, nil},
		{"map", `{"a":1}`, func() any { return new(map[string]int) }, map[string]int{"a": 1}, nil},
		{"map is replaced", `{"new":2}`, func() any { return &map[string]int{"old": 1} }, map[string]int{"new": 2}, nil},
		{"map with int keys", `{"1":"a","-2":"b"}`, func() any { return new(map[int]string) }, map[int]string{1: "a", -2: "b"}, nil},
		{"map with text keys", `{"high":2}`, func() any { return new(map[codecLevel]int) }, map[codecLevel]int{1: 2}, nil},
		{"any gets natural values", `{"a":[1,"x",true,null,{}]}`, func() any { return new(any) },
			map[string]any{"a": []any{1.0, "x", true, nil, map[string]any{}}}, nil},
		{"struct keeps defaults for missing keys", `{"url":"u","name":"n","ports":[{"host":"h","port":22}],"count":"7"}`,
			func() any { return &codecConfig{Baudrate: 9600, Timeout: time.Second} },
			codecConfig{codecBase: codecBase{Name: "n"}, URL: "u", Baudrate: 9600, Timeout: time.Second,
				Ports: []codecPort{{Host: "h", Port: 22}}, Count: 7}, nil},
		{"null clears a nullable field", `{"labels":null}`, func() any { return &codecConfig{Labels: map[string]string{"a": "b"}} },
			codecConfig{}, nil},
		{"embedded pointer is allocated", `{"name":"x","extra":1}`, func() any { return new(codecEmbedPtr) },
			codecEmbedPtr{&CodecExportedBase{Name: "x"}, 1}, nil},
		{"embedded conflicts", `{"Y":1,"z":2}`, func() any { return new(codecConflict) },
			codecConflict{codecB: codecB{Y: 1}, Z: 2}, nil},
		{"quoted fields", `{"n":"-3","f":"0.1","b":"true","s":"\"x\""}`, func() any { return new(codecQuoted) },
			codecQuoted{N: &n, F: 0.1, B: true, S: "x"}, nil},
		{"quoted null pointer", `{"n":null}`, func() any { return &codecQuoted{N: &n} }, codecQuoted{}, nil},
		{"duration from string", `"1m30s"`, func() any { return new(time.Duration) }, 90 * time.Second, nil},
		{"duration from seconds", `2.5`, func() any { return new(time.Duration) }, 2500 * time.Millisecond, nil},
		{"negative duration", `"-1.5s"`, func() any { return new(time.Duration) }, -1500 * time.Millisecond, nil},
		{"time in UTC", `"2024-01-02T03:04:05.5Z"`, func() any { return new(time.Time) },
			time.Date(2024, 1, 2, 3, 4, 5, 5e8, time.UTC), nil},
		{"time at +00:00 is UTC", `"2024-01-02T03:04:05+00:00"`, func() any { return new(time.Time) },
			time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), nil},
		{"time with offset", `"2024-01-02T03:04:05+01:00"`, func() any { return new(time.Time) }, nil, func(got any) bool {
			tm := got.(time.Time)
			_, offset := tm.Zone()
			return tm.Equal(time.Date(2024, 1, 2, 2, 4, 5, 0, time.UTC)) && offset == 3600
		}},
		{"TextUnmarshaler", `"high"`, func() any { return new(codecLevel) }, codecLevel(1), nil},
		{"Unmarshaler", `[3,4]`, func() any { return new(codecPoint) }, codecPoint{3, 4}, nil},
		{"Unmarshaler behind a pointer", `[3,4]`, func() any { return new(*codecPoint) }, &codecPoint{3, 4}, nil},
		{"raw JSON", `{"b":2,"a":[1,2.5,"x"]}`, func() any { return new(json.RawMessage) },
			json.RawMessage(`{"a":[1,2.5,"x"],"b":2}`), nil},
		{"raw JSON null", `null`, func() any { return new(json.RawMessage) }, json.RawMessage(`null`), nil},
		{"structpb.Struct", `{"a":1}`, func() any { return new(*structpb.Struct) }, nil, func(got any) bool {
			return got.(*structpb.Struct).GetFields()["a"].GetNumberValue() == 1
		}},
		{"structpb.ListValue", `[1]`, func() any { return new(*structpb.ListValue) }, nil, func(got any) bool {
			return len(got.(*structpb.ListValue).GetValues()) == 1
		}},
		{"nil Value into structpb.Value", ``, func() any { return new(*structpb.Value) }, nil, func(got any) bool {
			_, ok := got.(*structpb.Value).GetKind().(*structpb.Value_NullValue)
			return ok
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := tt.dst()
			if err := decodeValue(parseValue(t, tt.src), reflect.ValueOf(dst).Elem(), "arg"); err != nil {
				t.Fatalf("decodeValue(%s): %v", tt.src, err)
			}
			got := reflect.ValueOf(dst).Elem().Interface()
			if tt.cmp != nil {
				if !tt.cmp(got) {
					t.Errorf("decodeValue(%s) = %#v", tt.src, got)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decodeValue(%s)\n got %#v\nwant %#v", tt.src, got, tt.want)
			}
		})
	}
}

func TestDecodeValuePassesProtobufValuesThrough(t *testing.T) {
	src := structpb.NewStringValue("x")
	var got *structpb.Value
	if err := decodeValue(src, reflect.ValueOf(&got).Elem(), "arg"); err != nil || got != src {
		t.Errorf("decodeValue into *structpb.Value = %p, %v; want the same pointer %p", got, err, src)
	}
}

func TestDecodeValueErrors(t *testing.T) {
	long := strings.Repeat("a", 60)
	tests := []struct {
		name string
		src  string // JSON; "" is a nil *structpb.Value
		dst  any    // a pointer to decode into
		path string
		want string
	}{
		{"string for integer", `{"baudrate":"fast"}`, new(codecConfig), "config",
			`config.baudrate: expected integer, got string "fast"`},
		{"fraction for integer", `1.5`, new(int), "argument 1", "argument 1: expected integer, got 1.5"},
		{"overflow", `300`, new(uint8), "argument 1", "argument 1: value 300 overflows uint8"},
		{"negative unsigned", `-1`, new(uint), "argument 1", "argument 1: value -1 overflows uint"},
		{"int64 overflow", `9223372036854775808`, new(int64), "arg", "arg: value 9223372036854776000 overflows int64"},
		{"float32 overflow", `1e39`, new(float32), "arg", "arg: value 1e+39 overflows float32"},
		{"null for integer", `null`, new(int), "arg", "arg: expected integer, got null"},
		{"nil Value for integer", ``, new(int), "arg", "arg: expected integer, got null"},
		{"null for struct", `null`, new(codecPort), "arg", "arg: expected object, got null"},
		{"bool for string", `true`, new(string), "arg", "arg: expected string, got boolean true"},
		{"string for bool", `"yes"`, new(bool), "arg", `arg: expected boolean, got string "yes"`},
		{"object for list", `{"a":1}`, new([]int), "arg", `arg: expected array of integer, got object {"a":1}`},
		{"list for object", `[1,2]`, new(codecPort), "arg", `arg: expected object, got array [1,2]`},
		{"list for map", `[1,2]`, new(map[string]int), "arg", `arg: expected object, got array [1,2]`},
		{"long value is cut", `"` + long + `"`, new(int), "arg",
			`arg: expected integer, got string "` + long[:36] + `...`},
		{"long list is cut", `[` + strings.Repeat("1,", 40) + `1]`, new(string), "arg",
			`arg: expected string, got array [` + strings.Repeat("1,", 18) + `...`},
		{"unknown key", `{"baud":9600}`, new(codecConfig), "config",
			`config.baud: unknown key; valid keys: baudrate, count, debug, labels, name, ports, timeout, url`},
		{"unknown keys", `{"b":1,"a":2,"host":"h"}`, new(codecPort), "config",
			`config: unknown keys "a", "b"; valid keys: host, port`},
		{"many unknown keys", `{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7}`, new(codecPort), "arg",
			`arg: unknown keys "a", "b", "c", "d", "e", and 2 more; valid keys: host, port`},
		{"unknown key of an empty struct", `{"x":1}`, new(struct{}), "arg", `arg.x: unknown key; this object takes no keys`},
		{"hidden field is unknown", `{"Secret":"s"}`, new(codecConfig), "config", `config.Secret: unknown key; valid keys: baudrate, count, debug, labels, name, ports, timeout, url`},
		{"keys are case-sensitive", `{"URL":"u"}`, new(codecConfig), "config", `config.URL: unknown key; valid keys: baudrate, count, debug, labels, name, ports, timeout, url`},
		{"conflicting embedded key is unknown", `{"X":1}`, new(codecConflict), "arg", `arg.X: unknown key; valid keys: Y, z`},
		{"nested path", `{"ports":[{"host":"a"},{"host":5}]}`, new(codecConfig), "config",
			"config.ports[1].host: expected string, got 5"},
		{"map path", `{"labels":{"zone":1}}`, new(codecConfig), "config", "config.labels.zone: expected string, got 1"},
		{"odd map key path", `{"labels":{"a b":1}}`, new(codecConfig), "config", `config.labels["a b"]: expected string, got 1`},
		{"root path", `{"ports":[{"host":"a","port":70000}]}`, new(codecConfig), "", "ports[0].port: value 70000 overflows uint16"},
		{"argument path", `{"nme":"x"}`, new(codecBase), "argument 1", `argument 1.nme: unknown key; valid keys: debug, name`},
		{"array length", `[1,2,3]`, new([2]int), "arg", "arg: expected array of 2 elements, got array of 3"},
		{"duration string", `"fast"`, new(time.Duration), "arg",
			`arg: expected duration, got string "fast" (use a number of seconds, or a string like "1m30s")`},
		{"duration bool", `true`, new(time.Duration), "arg",
			`arg: expected duration, got boolean true (use a number of seconds, or a string like "1m30s")`},
		{"duration overflow", `1e300`, new(time.Duration), "arg", "arg: value 1e+300 overflows duration"},
		{"timestamp", `"yesterday"`, new(time.Time), "arg",
			`arg: expected timestamp, got string "yesterday" (use RFC 3339, like "2006-01-02T15:04:05Z")`},
		{"TextUnmarshaler wants a string", `3`, new(codecLevel), "arg", "arg: expected string, got 3"},
		{"TextUnmarshaler error", `"medium"`, new(codecLevel), "arg", `arg: unknown level "medium"; use low or high`},
		{"Unmarshaler error", `"x"`, new(codecPoint), "arg", `arg: point: want [x, y], got "x"`},
		{"bytes", `[104,105]`, new([]byte), "arg",
			"arg: cannot decode into []byte: bytes are not a valid value; use a string, or a byte stream for binary data"},
		{"channel", `1`, new(chan int), "arg", "arg: cannot decode into chan int: it has no JSON form"},
		{"non-empty interface", `"x"`, new(fmt.Stringer), "arg", `arg: cannot decode string "x" into interface fmt.Stringer; use a concrete type`},
		{"int map key", `{"x":"a"}`, new(map[int]string), "arg", `arg.x: expected an integer key, got "x"`},
		{"int map key overflow", `{"300":"a"}`, new(map[uint8]string), "arg", `arg["300"]: key 300 overflows uint8`},
		{"text map key", `{"mid":1}`, new(map[codecLevel]int), "arg", `arg.mid: invalid key: unknown level "mid"; use low or high`},
		{"bad map key type", `{}`, new(map[bool]int), "arg",
			"arg: cannot decode into map[bool]int: map keys must be strings, integers or implement encoding.TextUnmarshaler"},
		{"embedded unexported pointer", `{"name":"x"}`, new(codecEmbedUnexportedPtr), "arg",
			"arg.name: cannot set embedded pointer to unexported struct sdk.codecBase"},
		{"quoted garbage", `{"count":"abc"}`, new(codecConfig), "config", `config.count: expected string holding integer, got string "abc"`},
		{"quoted bare number", `{"count":5}`, new(codecConfig), "config", `config.count: expected string holding integer, got 5`},
		{"quoted overflow", `{"n":"99999999999999999999"}`, new(codecQuoted), "arg", `arg.n: value 99999999999999999999 overflows int64`},
		{"quoted string not quoted", `{"s":"x"}`, new(codecQuoted), "arg", `arg.s: expected string holding string, got string "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := decodeValue(parseValue(t, tt.src), reflect.ValueOf(tt.dst).Elem(), tt.path)
			if err == nil {
				t.Fatalf("decodeValue(%s) into %T succeeded; want error %q", tt.src, tt.dst, tt.want)
			}
			var ve *ValueError
			if !errors.As(err, &ve) {
				t.Errorf("error %v is a %T; want *ValueError", err, err)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %q\nwant %q", err, tt.want)
			}
		})
	}
}

func TestDecodeValueErrorSplitsPathAndMessage(t *testing.T) {
	err := decodeValue(parseValue(t, `{"baudrate":"fast"}`), reflect.ValueOf(new(codecConfig)).Elem(), "")
	var ve *ValueError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is a %T; want *ValueError", err, err)
	}
	if ve.Path != "baudrate" || ve.Msg != `expected integer, got string "fast"` {
		t.Errorf("ValueError{Path: %q, Msg: %q}; want the key and the message apart", ve.Path, ve.Msg)
	}
}

func TestDecodeValueSpecialNumbers(t *testing.T) {
	// JSON has no NaN, but a protobuf Value can carry one.
	for _, f := range []float64{math.NaN(), math.Inf(1)} {
		var got float64
		err := decodeValue(structpb.NewNumberValue(f), reflect.ValueOf(&got).Elem(), "arg")
		want := "arg: expected number, got " + formatNumber(f)
		if err == nil || err.Error() != want {
			t.Errorf("decodeValue(%v) error = %v; want %q", f, err, want)
		}
	}
	err := decodeValue(structpb.NewNumberValue(1), reflect.ValueOf(5), "arg")
	if want := "arg: cannot decode into an unsettable int"; err == nil || err.Error() != want {
		t.Errorf("decodeValue into an unsettable value: error = %v; want %q", err, want)
	}
}

func TestValueRoundTrip(t *testing.T) {
	n := int64(1 << 40)
	tests := []struct {
		name string
		in   any
	}{
		{"struct", codecConfig{
			codecBase: codecBase{Name: "psu", Debug: true},
			URL:       "tcp://lab:5025",
			Baudrate:  115200,
			Timeout:   1500 * time.Millisecond,
			Ports:     []codecPort{{Host: "a", Port: 22}, {Host: "b"}},
			Labels:    map[string]string{"zone": "1", "odd key": ""},
			Count:     -7,
		}},
		{"slice of structs", []codecPort{{"a", 1}, {"b", 65535}}},
		{"map of slices", map[string][]int{"a": {1, 2}, "b": nil}},
		{"map with int keys", map[int8]bool{-128: true, 127: false}},
		{"pointer", intPtr(-1)},
		{"array", [3]bool{true, false, true}},
		{"duration", 36*time.Hour + time.Nanosecond},
		{"min duration", time.Duration(math.MinInt64)},
		{"time", time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
		{"text", codecLevel(1)},
		{"json", codecPoint{-1, 1}},
		{"embedded pointer", codecEmbedPtr{&CodecExportedBase{"n"}, 2}},
		{"quoted", codecQuoted{N: &n, F: 3.25, S: "q\"uote"}},
		{"any", map[string]any{"a": []any{1.5, "x", false, nil, map[string]any{}}}},
		{"float32", float32(0.1)},
		{"large uint64", uint64(1 << 63)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := encodeValue(reflect.ValueOf(tt.in))
			if err != nil {
				t.Fatalf("encodeValue(%#v): %v", tt.in, err)
			}
			got := reflect.New(reflect.TypeOf(tt.in))
			if err := decodeValue(v, got.Elem(), "arg"); err != nil {
				t.Fatalf("decodeValue(%s): %v", canonical(t, v), err)
			}
			if !reflect.DeepEqual(got.Elem().Interface(), tt.in) {
				t.Errorf("round trip through %s\n got %#v\nwant %#v", canonical(t, v), got.Elem().Interface(), tt.in)
			}
		})
	}
}

func TestJSONType(t *testing.T) {
	tests := []struct {
		typ  reflect.Type
		want string
	}{
		{nil, "null"},
		{reflect.TypeFor[string](), "string"},
		{reflect.TypeFor[uint16](), "integer"},
		{reflect.TypeFor[int64](), "integer"},
		{reflect.TypeFor[float32](), "number"},
		{reflect.TypeFor[bool](), "boolean"},
		{reflect.TypeFor[*int](), "integer"},
		{reflect.TypeFor[[]string](), "array of string"},
		{reflect.TypeFor[[2][]float64](), "array of array of number"},
		{reflect.TypeFor[map[string]int](), "object"},
		{reflect.TypeFor[codecConfig](), "object"},
		{reflect.TypeFor[*codecPort](), "object"},
		{reflect.TypeFor[any](), "any"},
		{reflect.TypeFor[time.Duration](), "duration"},
		{reflect.TypeFor[time.Time](), "timestamp"},
		{reflect.TypeFor[codecLevel](), "string"},
		{reflect.TypeFor[codecPoint](), "any"},
		{reflect.TypeFor[json.RawMessage](), "any"},
		{reflect.TypeFor[*structpb.Value](), "any"},
		{reflect.TypeFor[*structpb.Struct](), "object"},
		{reflect.TypeFor[*structpb.ListValue](), "array"},
		{reflect.TypeFor[[]byte](), "bytes"},
		{reflect.TypeFor[chan int](), "unsupported chan int"},
	}
	for _, tt := range tests {
		if got := jsonType(tt.typ); got != tt.want {
			t.Errorf("jsonType(%v) = %q; want %q", tt.typ, got, tt.want)
		}
	}
}

func TestStructKeys(t *testing.T) {
	want := []structKey{
		{"name", "string", "Instance name"},
		{"debug", "boolean", ""},
		{"url", "string", "Where the device is"},
		{"baudrate", "integer", "Line speed"},
		{"timeout", "duration", ""},
		{"ports", "array of object", ""},
		{"labels", "object", ""},
		{"count", "string", ""},
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[codecConfig](), reflect.TypeFor[*codecConfig]()} {
		if got := structKeys(typ); !reflect.DeepEqual(got, want) {
			t.Errorf("structKeys(%v)\n got %v\nwant %v", typ, got, want)
		}
	}
	if got := structKeys(reflect.TypeFor[codecConflict]()); !reflect.DeepEqual(got, []structKey{{"Y", "integer", ""}, {"z", "integer", ""}}) {
		t.Errorf("structKeys(codecConflict) = %v; want Y and z", got)
	}
	if got := structKeys(reflect.TypeFor[int]()); got != nil {
		t.Errorf("structKeys(int) = %v; want nil", got)
	}
}

// TestValueConcurrent decodes and encodes one type from many goroutines at once, as concurrent calls
// do; the race detector checks the type cache.
func TestValueConcurrent(t *testing.T) {
	type fresh struct {
		A []codecPort `json:"a"`
		B codecLevel  `json:"b"`
	}
	src := parseValue(t, `{"a":[{"host":"h","port":1}],"b":"high"}`)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			var v fresh
			if err := decodeValue(src, reflect.ValueOf(&v).Elem(), "arg"); err != nil {
				errs <- err
				return
			}
			if _, err := encodeValue(reflect.ValueOf(v)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkDecodeStruct(b *testing.B) {
	src := parseValue(b, `{"name":"psu","url":"tcp://lab:5025","baudrate":9600,"timeout":"2s",`+
		`"ports":[{"host":"a","port":22},{"host":"b","port":23}],"labels":{"zone":"1"}}`)
	for b.Loop() {
		var c codecConfig
		if err := decodeValue(src, reflect.ValueOf(&c).Elem(), "config"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeStruct(b *testing.B) {
	c := reflect.ValueOf(codecConfig{
		codecBase: codecBase{Name: "psu"}, URL: "tcp://lab:5025", Baudrate: 9600, Timeout: 2 * time.Second,
		Ports: []codecPort{{"a", 22}, {"b", 23}}, Labels: map[string]string{"zone": "1"},
	})
	for b.Loop() {
		if _, err := encodeValue(c); err != nil {
			b.Fatal(err)
		}
	}
}
