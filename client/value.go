package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"
)

// maxExactInt is the largest integer magnitude a JSON number (a double) holds exactly.
const maxExactInt = 1 << 53

var errBytes = errors.New("bytes cannot travel as a JSON value (upload them through a resource stream)")

// toValue converts a Go value into a JSON value for the wire. It is structpb.NewValue with
// integers checked against 2^53 and with any slice, array, string-keyed map, pointer or struct
// (through encoding/json) accepted.
func toValue(v any) (*structpb.Value, error) {
	switch x := v.(type) {
	case nil:
		return structpb.NewNullValue(), nil
	case *structpb.Value:
		if x == nil {
			return structpb.NewNullValue(), nil
		}
		return x, nil
	case *structpb.Struct:
		return structpb.NewStructValue(x), nil
	case *structpb.ListValue:
		return structpb.NewListValue(x), nil
	case json.Number:
		return numberValue(x)
	case []byte:
		return nil, errBytes
	case json.Marshaler:
		return viaJSON(x)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Bool:
		return structpb.NewBoolValue(rv.Bool()), nil
	case reflect.String:
		return structpb.NewStringValue(rv.String()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i := rv.Int()
		if i > maxExactInt || i < -maxExactInt {
			return nil, fmt.Errorf("integer %d does not fit in a JSON number (limit 2^53)", i)
		}
		return structpb.NewNumberValue(float64(i)), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > maxExactInt {
			return nil, fmt.Errorf("integer %d does not fit in a JSON number (limit 2^53)", u)
		}
		return structpb.NewNumberValue(float64(u)), nil
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%v is not a JSON number", f)
		}
		return structpb.NewNumberValue(f), nil
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return structpb.NewNullValue(), nil
		}
		return toValue(rv.Elem().Interface())
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return structpb.NewNullValue(), nil
		}
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return nil, errBytes
		}
		list := &structpb.ListValue{Values: make([]*structpb.Value, rv.Len())}
		for i := range rv.Len() {
			e, err := toValue(rv.Index(i).Interface())
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			list.Values[i] = e
		}
		return structpb.NewListValue(list), nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("map keys must be strings, not %s", rv.Type().Key())
		}
		if rv.IsNil() {
			return structpb.NewNullValue(), nil
		}
		obj := &structpb.Struct{Fields: make(map[string]*structpb.Value, rv.Len())}
		for it := rv.MapRange(); it.Next(); {
			e, err := toValue(it.Value().Interface())
			if err != nil {
				return nil, fmt.Errorf("%q: %w", it.Key().String(), err)
			}
			obj.Fields[it.Key().String()] = e
		}
		return structpb.NewStructValue(obj), nil
	case reflect.Struct:
		return viaJSON(v)
	}
	return nil, fmt.Errorf("a %T cannot travel as a JSON value", v)
}

// numberValue converts a JSON number; integers (no fraction or exponent) must be exact.
func numberValue(n json.Number) (*structpb.Value, error) {
	s := n.String()
	if !strings.ContainsAny(s, ".eE") {
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil || i > maxExactInt || i < -maxExactInt {
			return nil, fmt.Errorf("integer %s does not fit in a JSON number (limit 2^53)", s)
		}
		return structpb.NewNumberValue(float64(i)), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("%q is not a JSON number", s)
	}
	return structpb.NewNumberValue(f), nil
}

// viaJSON converts a value through its JSON encoding.
func viaJSON(v any) (*structpb.Value, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var x any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&x); err != nil {
		return nil, err
	}
	return toValue(x)
}
