package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzParseArgs: a word that is valid JSON becomes that JSON value (numbers kept exact as
// json.Number); any other word is passed on unchanged as a string.
func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{"5", "-1", "true", `"x"`, `{"a":[1,null]}`, "hello", "", "1e400", "[1,", " 7 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, word string) {
		got := parseArgs([]string{word})[0]
		if !json.Valid([]byte(word)) {
			if got != word {
				t.Fatalf("%q: not JSON, got %#v, want the word", word, got)
			}
			return
		}
		data, err := json.Marshal(got)
		if err != nil {
			t.Fatalf("%q: parsed as %#v, which does not encode: %v", word, got, err)
		}
		if want, back := decode(t, []byte(word)), decode(t, data); !reflect.DeepEqual(back, want) {
			t.Fatalf("%q: parsed as %#v", word, got)
		}
	})
}

func decode(t *testing.T, data []byte) any {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%q: %v", data, err)
	}
	return v
}
