package sdk

import (
	"encoding"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/structpb"
)

// Encoding Go values into protobuf Values (results, and defaults of parameters).

// encodeValue converts a Go value to a protobuf Value. An invalid reflect.Value encodes as null.
// Errors are *ValueError with a path relative to v.
func encodeValue(v reflect.Value) (*structpb.Value, error) {
	pv, err := encode(v, 0)
	if err != nil {
		return nil, err.valueError("")
	}
	return pv, nil
}

func encode(v reflect.Value, depth int) (*structpb.Value, *codecError) {
	if !v.IsValid() {
		return structpb.NewNullValue(), nil
	}
	if depth > maxDepth {
		return nil, codecErrorf("value nests more than %d levels deep; is there a pointer cycle?", maxDepth)
	}
	t := v.Type()
	switch t.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return structpb.NewNullValue(), nil
		}
	}
	ti := infoFor(t)
	switch ti.enc {
	case viaPBValue:
		return v.Interface().(*structpb.Value), nil
	case viaPBStruct:
		return structpb.NewStructValue(v.Interface().(*structpb.Struct)), nil
	case viaPBList:
		return structpb.NewListValue(v.Interface().(*structpb.ListValue)), nil
	case viaDuration:
		return structpb.NewStringValue(time.Duration(v.Int()).String()), nil
	case viaTime:
		tm := v.Interface().(time.Time)
		if y := tm.Year(); y < 0 || y > 9999 {
			return nil, codecErrorf("cannot encode time %s: RFC 3339 has only the years 0 to 9999", tm)
		}
		return structpb.NewStringValue(tm.Format(time.RFC3339Nano)), nil
	case viaJSON:
		b, err := methodReceiver(v, ti.encPtr).(json.Marshaler).MarshalJSON()
		if err != nil {
			return nil, codecErrorf("%s.MarshalJSON: %v", t, err)
		}
		var x any
		if err := json.Unmarshal(b, &x); err != nil {
			return nil, codecErrorf("%s.MarshalJSON returned invalid JSON: %v", t, err)
		}
		pv, err := structpb.NewValue(x)
		if err != nil {
			return nil, codecErrorf("%s.MarshalJSON: %v", t, err)
		}
		return pv, nil
	case viaText:
		b, err := methodReceiver(v, ti.encPtr).(encoding.TextMarshaler).MarshalText()
		if err != nil {
			return nil, codecErrorf("%s.MarshalText: %v", t, err)
		}
		if !utf8.Valid(b) {
			return nil, codecErrorf("%s.MarshalText returned invalid UTF-8", t)
		}
		return structpb.NewStringValue(string(b)), nil
	case badBytes:
		return nil, codecErrorf("cannot encode %s: %s", bytesName(t), noBytes)
	}

	switch t.Kind() {
	case reflect.Interface, reflect.Pointer:
		return encode(v.Elem(), depth+1)
	case reflect.Bool:
		return structpb.NewBoolValue(v.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return structpb.NewNumberValue(float64(v.Int())), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return structpb.NewNumberValue(float64(v.Uint())), nil
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, codecErrorf("cannot encode %s: JSON numbers must be finite", formatNumber(f))
		}
		return structpb.NewNumberValue(f), nil
	case reflect.String:
		s := v.String()
		if !utf8.ValidString(s) {
			return nil, codecErrorf("cannot encode string %s: it is not valid UTF-8", quoteShort(s))
		}
		return structpb.NewStringValue(s), nil
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && v.IsNil() {
			return structpb.NewNullValue(), nil
		}
		list := make([]*structpb.Value, v.Len())
		for i := range list {
			pv, err := encode(v.Index(i), depth+1)
			if err != nil {
				return nil, err.at(indexSeg(i))
			}
			list[i] = pv
		}
		return structpb.NewListValue(&structpb.ListValue{Values: list}), nil
	case reflect.Map:
		return encodeMap(v, depth)
	case reflect.Struct:
		return encodeStruct(v, ti, depth)
	}
	return nil, codecErrorf("cannot encode %s: it has no JSON form", t)
}

// methodReceiver returns v, or a pointer to v (or to a copy of v) when the method needs a pointer
// receiver, so a value whose MarshalJSON is on its pointer encodes the same however it is held.
func methodReceiver(v reflect.Value, ptr bool) any {
	if !ptr {
		return v.Interface()
	}
	if v.CanAddr() {
		return v.Addr().Interface()
	}
	p := reflect.New(v.Type())
	p.Elem().Set(v)
	return p.Interface()
}

func encodeMap(v reflect.Value, depth int) (*structpb.Value, *codecError) {
	t := v.Type()
	if !validMapKey(t.Key(), textMarshalerType) {
		return nil, codecErrorf("cannot encode %s: map keys must be strings, integers or implement encoding.TextMarshaler", t)
	}
	if v.IsNil() {
		return structpb.NewNullValue(), nil
	}
	fields := make(map[string]*structpb.Value, v.Len())
	iter := v.MapRange()
	for iter.Next() {
		key, err := mapKeyString(iter.Key())
		if err != nil {
			return nil, err
		}
		pv, err := encode(iter.Value(), depth+1)
		if err != nil {
			return nil, err.at(keySeg(key))
		}
		fields[key] = pv
	}
	return structpb.NewStructValue(&structpb.Struct{Fields: fields}), nil
}

// validMapKey reports whether maps with key type kt can be converted; method is the text interface
// the direction needs.
func validMapKey(kt, method reflect.Type) bool {
	switch kt.Kind() {
	case reflect.String,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	}
	if method == textUnmarshalerType {
		kt = reflect.PointerTo(kt)
	}
	return kt.Implements(method)
}

func mapKeyString(k reflect.Value) (string, *codecError) {
	switch k.Kind() {
	case reflect.String:
		s := k.String()
		if !utf8.ValidString(s) {
			return "", codecErrorf("cannot encode key %s: it is not valid UTF-8", quoteShort(s))
		}
		return s, nil
	}
	if tm, ok := k.Interface().(encoding.TextMarshaler); ok {
		if k.Kind() == reflect.Pointer && k.IsNil() {
			return "", nil
		}
		b, err := tm.MarshalText()
		if err != nil {
			return "", codecErrorf("%s.MarshalText: %v", k.Type(), err)
		}
		if !utf8.Valid(b) {
			return "", codecErrorf("%s.MarshalText returned invalid UTF-8", k.Type())
		}
		return string(b), nil
	}
	switch k.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(k.Int(), 10), nil
	default: // the unsigned kinds; validMapKey allowed no others
		return strconv.FormatUint(k.Uint(), 10), nil
	}
}

func encodeStruct(v reflect.Value, ti *typeInfo, depth int) (*structpb.Value, *codecError) {
	fields := make(map[string]*structpb.Value, len(ti.fields))
	for i := range ti.fields {
		f := &ti.fields[i]
		fv, ok := fieldToRead(v, f.index)
		if !ok || f.omitEmpty && isEmptyValue(fv) || f.omitZero && isZeroValue(fv) {
			continue
		}
		var pv *structpb.Value
		var err *codecError
		if f.quoted {
			pv, err = encodeQuoted(fv)
		} else {
			pv, err = encode(fv, depth+1)
		}
		if err != nil {
			return nil, err.at(keySeg(f.name))
		}
		fields[f.name] = pv
	}
	return structpb.NewStructValue(&structpb.Struct{Fields: fields}), nil
}

// fieldToRead follows index through embedded structs; it reports false at a nil embedded pointer.
func fieldToRead(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, true
}

// fieldToSet follows index through embedded structs, allocating nil embedded pointers.
func fieldToSet(v reflect.Value, index []int) (reflect.Value, *codecError) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				if !v.CanSet() {
					return reflect.Value{}, codecErrorf("cannot set embedded pointer to unexported struct %s", v.Type().Elem())
				}
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, nil
}

// isEmptyValue is encoding/json's omitempty test.
func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0
	case reflect.Interface, reflect.Pointer:
		return v.IsNil()
	}
	return false
}

// isZeroValue is encoding/json's omitzero test: an IsZero() bool method if there is one, else the zero value.
func isZeroValue(v reflect.Value) bool {
	t := v.Type()
	switch {
	case t.Implements(isZeroerType):
		if (t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface) && v.IsNil() {
			return true
		}
		return v.Interface().(interface{ IsZero() bool }).IsZero()
	case reflect.PointerTo(t).Implements(isZeroerType):
		return methodReceiver(v, true).(interface{ IsZero() bool }).IsZero()
	}
	return v.IsZero()
}

// encodeQuoted encodes a field with the ",string" option: its value as a JSON text in a string.
func encodeQuoted(v reflect.Value) (*structpb.Value, *codecError) {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return structpb.NewNullValue(), nil
		}
		v = v.Elem()
	}
	var s string
	switch v.Kind() {
	case reflect.Bool:
		s = strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s = strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		s = strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, codecErrorf("cannot encode %s: JSON numbers must be finite", formatNumber(f))
		}
		s = string(appendFloat(nil, f, v.Type().Bits()))
	default: // reflect.String
		if !utf8.ValidString(v.String()) {
			return nil, codecErrorf("cannot encode string %s: it is not valid UTF-8", quoteShort(v.String()))
		}
		s = string(appendString(nil, v.String()))
	}
	return structpb.NewStringValue(s), nil
}
