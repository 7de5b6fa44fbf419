package sdk

import (
	"encoding/json"
	"reflect"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"
)

// Types whose json tags exercise what encoding/json decides from them: names, "-" and "-,",
// omitempty, the string option, embedded structs (promoted fields, a shallower field shadowing
// a deeper one, two at the same depth cancelling each other, a tag beating no tag), and
// unexported fields. Integers stay within 2^53, where a JSON number (a double) is exact.
type (
	likeInner struct {
		A      int32  `json:"a"`
		B      string // no tag: the field's name
		Hidden bool   `json:"-"`
		Dash   int16  `json:"-,"` // the key "-"
		E      *int32 `json:",omitempty"`
		F      uint8  `json:"f,string"`
		G      bool   `json:"g,omitempty,string"`
	}
	likeDeep struct {
		X      int32  `json:"x"`
		Shadow string `json:"shadow"` // shadowed by likeTop.Shadow
		Deep   string `json:"deep"`
	}
	likeMid struct {
		likeDeep
		Y   string `json:"y"`
		Dup int32  // also in likeOther at the same depth: neither is used (untagged: go vet refuses a repeated tag)
		Tie string // untagged; likeOther's tagged "Tie" wins
	}
	likeOther struct {
		Dup int32
		Z   []int32 `json:"z"`
		Tie string  `json:"Tie"`
	}
	// LikeExported is embedded by pointer: encoding/json allocates it when one of its fields is set.
	LikeExported struct {
		E1 string
		E2 *likeInner `json:"e2,omitempty"`
	}
	likeTop struct {
		likeMid
		likeOther
		*LikeExported
		Shadow     int32                `json:"shadow"`
		Name       string               `json:"name,omitempty"`
		Inner      likeInner            `json:"inner"`
		unexported int32                //nolint:unused // encoding/json ignores it, so must the codec
		Map        map[string]likeInner `json:"map"`
		List       []likeInner          `json:"list"`
		Ptr        *likeInner           `json:"ptr"`
		Any        any                  `json:"any"`
		Keys       map[int16]string     `json:"keys"`
		Punct      string               `json:"a-b.c$"`
		Arr        [2]string            `json:"arr"`
	}
)

// FuzzDecodeLikeJSON checks the promise that struct tags are read as encoding/json reads them,
// against encoding/json itself:
//   - a value the codec decodes from some JSON, encoding/json decodes from the same JSON to the
//     same Go value (the codec is stricter: it may refuse what encoding/json takes, e.g. keys in
//     another case, never read it differently);
//   - a value encoding/json decoded encodes through the codec as encoding/json encodes it;
//   - and decodes back through the codec from encoding/json's encoding to the same value.
func FuzzDecodeLikeJSON(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"a":1,"B":"b","-":2,"E":3,"f":"4","g":"true"}`,
		`{"x":1,"shadow":5,"deep":"d","y":"y","Dup":1,"Tie":"t","z":[1,2],"E1":"e","e2":{"a":1}}`,
		`{"inner":{"a":-7,"B":"","Hidden":true},"map":{"k":{"f":"255"}},"list":[{},{"E":null}],"ptr":null}`,
		`{"any":[1,"x",{"y":null}],"keys":{"-3":"m","12":"n"},"a-b.c$":"p","arr":["1","2"],"name":""}`,
		`{"Shadow":1,"NAME":"x","Dup":2}`,
		`{"f":4,"g":true,"arr":["1"]}`,
	} {
		f.Add([]byte(seed))
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
		canon, err := json.Marshal(x) // the JSON as the codec sees it: numbers are doubles
		if err != nil {
			t.Fatal(err)
		}

		var byCodec likeTop
		if decodeValue(src, reflect.ValueOf(&byCodec).Elem(), "fuzz") == nil {
			var byJSON likeTop
			if err := json.Unmarshal(canon, &byJSON); err != nil {
				t.Fatalf("the codec decodes %s, encoding/json does not: %v", canon, err)
			}
			if !reflect.DeepEqual(byCodec, byJSON) {
				t.Fatalf("%s decodes differently:\n codec %+v\n  json %+v", canon, byCodec, byJSON)
			}
		}

		var v likeTop
		if json.Unmarshal(canon, &v) != nil {
			return
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := encodeValue(reflect.ValueOf(v))
		if err != nil {
			t.Fatalf("encoding/json encodes %+v as %s; the codec fails: %v", v, want, err)
		}
		var wantAny any
		if err := json.Unmarshal(want, &wantAny); err != nil {
			t.Fatal(err)
		}
		if got := enc.AsInterface(); !reflect.DeepEqual(got, wantAny) {
			gotJSON, _ := json.Marshal(got)
			t.Fatalf("%+v encodes differently:\n codec %s\n  json %s", v, gotJSON, want)
		}
		var back likeTop
		if err := decodeValue(enc, reflect.ValueOf(&back).Elem(), "fuzz"); err != nil {
			t.Fatalf("the codec does not decode its own encoding %s of %+v: %v", want, v, err)
		}
		var backJSON likeTop
		if err := json.Unmarshal(want, &backJSON); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, backJSON) {
			t.Fatalf("%s decodes differently:\n codec %+v\n  json %+v", want, back, backJSON)
		}
	})
}
