package sdk

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
)

// Decoding protobuf Values into Go values (arguments and configs): strict, each
// error naming where it is and why.

// decodeValue decodes src into dst, which must be settable. path names the place being decoded for
// error messages (e.g. "argument 2" or "config.ports[1].host"); errors are *ValueError. A nil src
// decodes like null. Struct fields whose keys are missing are left as they are, so callers can pre-fill
// defaults; slices, arrays and maps are replaced, not merged.
func decodeValue(src *structpb.Value, dst reflect.Value, path string) error {
	if !dst.CanSet() {
		what := "nothing"
		if dst.IsValid() {
			what = "an unsettable " + dst.Type().String()
		}
		return &ValueError{Path: path, Msg: "cannot decode into " + what}
	}
	if err := decode(src, dst, 0); err != nil {
		return err.valueError(path)
	}
	return nil
}

func isNullValue(v *structpb.Value) bool {
	switch v.GetKind().(type) {
	case nil, *structpb.Value_NullValue:
		return true
	}
	return false
}

func decode(src *structpb.Value, dst reflect.Value, depth int) *codecError {
	if depth > maxDepth {
		return codecErrorf("value nests more than %d levels deep", maxDepth)
	}
	t := dst.Type()
	ti := infoFor(t)
	switch ti.dec {
	case viaPBValue:
		if src == nil {
			src = structpb.NewNullValue()
		}
		dst.Set(reflect.ValueOf(src))
		return nil
	case viaPBStruct:
		if isNullValue(src) {
			dst.SetZero()
			return nil
		}
		s, ok := src.GetKind().(*structpb.Value_StructValue)
		if !ok {
			return typeMismatch(t, src)
		}
		dst.Set(reflect.ValueOf(s.StructValue))
		return nil
	case viaPBList:
		if isNullValue(src) {
			dst.SetZero()
			return nil
		}
		l, ok := src.GetKind().(*structpb.Value_ListValue)
		if !ok {
			return typeMismatch(t, src)
		}
		dst.Set(reflect.ValueOf(l.ListValue))
		return nil
	case viaDuration:
		return decodeDuration(src, dst)
	case viaTime:
		s, ok := src.GetKind().(*structpb.Value_StringValue)
		if !ok {
			return codecErrorf("expected timestamp, got %s (use RFC 3339, like \"2006-01-02T15:04:05Z\")", describeValue(src))
		}
		tm, err := time.Parse(time.RFC3339, s.StringValue)
		if err != nil {
			return codecErrorf("expected timestamp, got %s (use RFC 3339, like \"2006-01-02T15:04:05Z\")", describeValue(src))
		}
		if _, offset := tm.Zone(); offset == 0 {
			tm = tm.UTC() // "Z", "+00:00" and a UTC local zone all mean UTC
		}
		dst.Set(reflect.ValueOf(tm))
		return nil
	case viaJSON:
		b, ok := appendJSON(nil, src)
		if !ok {
			return codecErrorf("cannot decode %s into %s: it is not valid JSON", describeValue(src), t)
		}
		if err := dst.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(b); err != nil {
			return codecErrorf("%v", err)
		}
		return nil
	case viaText:
		s, ok := src.GetKind().(*structpb.Value_StringValue)
		if !ok {
			return typeMismatch(t, src)
		}
		if err := dst.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s.StringValue)); err != nil {
			return codecErrorf("%v", err)
		}
		return nil
	case badBytes:
		return codecErrorf("cannot decode into %s: %s", bytesName(t), noBytes)
	}

	switch t.Kind() {
	case reflect.Pointer:
		if isNullValue(src) {
			dst.SetZero()
			return nil
		}
		if dst.IsNil() {
			dst.Set(reflect.New(t.Elem()))
		}
		return decode(src, dst.Elem(), depth+1)
	case reflect.Interface:
		if isNullValue(src) {
			dst.SetZero()
			return nil
		}
		if t.NumMethod() != 0 {
			return codecErrorf("cannot decode %s into interface %s; use a concrete type", describeValue(src), t)
		}
		dst.Set(reflect.ValueOf(src.AsInterface()))
		return nil
	case reflect.Slice, reflect.Map:
		if isNullValue(src) {
			dst.SetZero()
			return nil
		}
	}

	switch k := src.GetKind().(type) {
	case *structpb.Value_BoolValue:
		if t.Kind() == reflect.Bool {
			dst.SetBool(k.BoolValue)
			return nil
		}
	case *structpb.Value_NumberValue:
		return decodeNumber(k.NumberValue, src, dst)
	case *structpb.Value_StringValue:
		if t.Kind() == reflect.String {
			dst.SetString(k.StringValue)
			return nil
		}
	case *structpb.Value_ListValue:
		return decodeList(k.ListValue.GetValues(), src, dst, depth)
	case *structpb.Value_StructValue:
		switch t.Kind() {
		case reflect.Map:
			return decodeMap(k.StructValue.GetFields(), dst, depth)
		case reflect.Struct:
			return decodeStruct(k.StructValue.GetFields(), dst, ti, depth)
		}
	}
	if !isConvertible(t) {
		return codecErrorf("cannot decode into %s: it has no JSON form", t)
	}
	return typeMismatch(t, src)
}

// isConvertible reports whether the kind of t has a JSON form at all.
func isConvertible(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Complex64, reflect.Complex128, reflect.Chan, reflect.Func, reflect.UnsafePointer, reflect.Invalid:
		return false
	}
	return true
}

func decodeNumber(f float64, src *structpb.Value, dst reflect.Value) *codecError {
	t := dst.Type()
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if f != math.Trunc(f) {
			return typeMismatch(t, src)
		}
		if lim := math.Ldexp(1, t.Bits()-1); f < -lim || f >= lim {
			return codecErrorf("value %s overflows %s", formatNumber(f), t.Kind())
		}
		dst.SetInt(int64(f))
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if f != math.Trunc(f) {
			return typeMismatch(t, src)
		}
		if f < 0 || f >= math.Ldexp(1, t.Bits()) {
			return codecErrorf("value %s overflows %s", formatNumber(f), t.Kind())
		}
		dst.SetUint(uint64(f))
		return nil
	case reflect.Float32, reflect.Float64:
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return typeMismatch(t, src)
		}
		if t.Kind() == reflect.Float32 && math.Abs(f) > math.MaxFloat32 {
			return codecErrorf("value %s overflows float32", formatNumber(f))
		}
		dst.SetFloat(f)
		return nil
	}
	if !isConvertible(t) {
		return codecErrorf("cannot decode into %s: it has no JSON form", t)
	}
	return typeMismatch(t, src)
}

func decodeDuration(src *structpb.Value, dst reflect.Value) *codecError {
	const hint = ` (use a number of seconds, or a string like "1m30s")`
	switch k := src.GetKind().(type) {
	case *structpb.Value_StringValue:
		d, err := time.ParseDuration(k.StringValue)
		if err != nil {
			return codecErrorf("expected duration, got %s%s", describeValue(src), hint)
		}
		dst.SetInt(int64(d))
		return nil
	case *structpb.Value_NumberValue:
		ns := math.Round(k.NumberValue * 1e9)
		if math.IsNaN(ns) || ns < math.MinInt64 || ns >= -math.MinInt64 {
			return codecErrorf("value %s overflows duration", formatNumber(k.NumberValue))
		}
		dst.SetInt(int64(ns))
		return nil
	}
	return codecErrorf("expected duration, got %s%s", describeValue(src), hint)
}

func decodeList(list []*structpb.Value, src *structpb.Value, dst reflect.Value, depth int) *codecError {
	t := dst.Type()
	switch t.Kind() {
	case reflect.Slice:
		s := reflect.MakeSlice(t, len(list), len(list))
		for i, e := range list {
			if err := decode(e, s.Index(i), depth+1); err != nil {
				return err.at(indexSeg(i))
			}
		}
		dst.Set(s)
		return nil
	case reflect.Array:
		if len(list) != t.Len() {
			return codecErrorf("expected array of %d elements, got array of %d", t.Len(), len(list))
		}
		dst.SetZero()
		for i, e := range list {
			if err := decode(e, dst.Index(i), depth+1); err != nil {
				return err.at(indexSeg(i))
			}
		}
		return nil
	}
	if !isConvertible(t) {
		return codecErrorf("cannot decode into %s: it has no JSON form", t)
	}
	return typeMismatch(t, src)
}

func decodeMap(fields map[string]*structpb.Value, dst reflect.Value, depth int) *codecError {
	t := dst.Type()
	kt := t.Key()
	if !validMapKey(kt, textUnmarshalerType) {
		return codecErrorf("cannot decode into %s: map keys must be strings, integers or implement encoding.TextUnmarshaler", t)
	}
	m := reflect.MakeMapWithSize(t, len(fields))
	elem := reflect.New(t.Elem()).Elem()
	// Sorted, so that of several bad entries the same one is always reported.
	for _, key := range slices.Sorted(maps.Keys(fields)) {
		kv, err := mapKey(kt, key)
		if err != nil {
			return err.at(keySeg(key))
		}
		elem.SetZero()
		if err := decode(fields[key], elem, depth+1); err != nil {
			return err.at(keySeg(key))
		}
		m.SetMapIndex(kv, elem)
	}
	dst.Set(m)
	return nil
}

func mapKey(kt reflect.Type, key string) (reflect.Value, *codecError) {
	if kt.Kind() == reflect.String {
		return reflect.ValueOf(key).Convert(kt), nil
	}
	if reflect.PointerTo(kt).Implements(textUnmarshalerType) {
		p := reflect.New(kt)
		if err := p.Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(key)); err != nil {
			return reflect.Value{}, codecErrorf("invalid key: %v", err)
		}
		return p.Elem(), nil
	}
	kv := reflect.New(kt).Elem()
	switch kt.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(key, 10, kt.Bits())
		if err != nil {
			return reflect.Value{}, mapKeyError(key, kt, err)
		}
		kv.SetInt(n)
	default: // the unsigned kinds; validMapKey allowed no others
		n, err := strconv.ParseUint(key, 10, kt.Bits())
		if err != nil {
			return reflect.Value{}, mapKeyError(key, kt, err)
		}
		kv.SetUint(n)
	}
	return kv, nil
}

func mapKeyError(key string, kt reflect.Type, err error) *codecError {
	if _, signed := strconv.ParseInt(key, 10, 64); errors.Is(err, strconv.ErrRange) || signed == nil {
		return codecErrorf("key %s overflows %s", cutShort(key), kt.Kind())
	}
	return codecErrorf("expected an integer key, got %s", quoteShort(key))
}

func decodeStruct(fields map[string]*structpb.Value, dst reflect.Value, ti *typeInfo, depth int) *codecError {
	var unknown []string
	for key := range fields {
		if _, ok := ti.byName[key]; !ok {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) == 1 {
		// One unknown key: its own path, so a config file's line can be found.
		return unknownKeys(nil, ti).at(keySeg(unknown[0]))
	}
	if len(unknown) > 1 {
		return unknownKeys(unknown, ti)
	}
	for i := range ti.fields {
		f := &ti.fields[i]
		sv, ok := fields[f.name]
		if !ok {
			continue
		}
		fv, err := fieldToSet(dst, f.index)
		if err == nil {
			if f.quoted {
				err = decodeQuoted(sv, fv)
			} else {
				err = decode(sv, fv, depth+1)
			}
		}
		if err != nil {
			return err.at(keySeg(f.name))
		}
	}
	return nil
}

// unknownKeys reports keys a struct does not take; with unknown nil, the
// caller positions the error at the one unknown key itself.
func unknownKeys(unknown []string, ti *typeInfo) *codecError {
	slices.Sort(unknown)
	const maxShown = 5
	var quoted []string
	for _, k := range unknown[:min(len(unknown), maxShown)] {
		quoted = append(quoted, quoteShort(k))
	}
	if len(unknown) > maxShown {
		quoted = append(quoted, fmt.Sprintf("and %d more", len(unknown)-maxShown))
	}
	msg := "unknown key"
	if len(unknown) > 0 {
		msg = "unknown keys " + strings.Join(quoted, ", ")
	}
	if ti.validKeys == "" {
		return codecErrorf("%s; this object takes no keys", msg)
	}
	return codecErrorf("%s; valid keys: %s", msg, ti.validKeys)
}

// decodeQuoted decodes a field with the ",string" option: a string holding the JSON text of a boolean,
// number or string.
func decodeQuoted(src *structpb.Value, dst reflect.Value) *codecError {
	if dst.Kind() == reflect.Pointer {
		if isNullValue(src) {
			dst.SetZero()
			return nil
		}
		if dst.IsNil() {
			dst.Set(reflect.New(dst.Type().Elem()))
		}
		dst = dst.Elem()
	}
	t := dst.Type()
	k, ok := src.GetKind().(*structpb.Value_StringValue)
	if !ok {
		return codecErrorf("expected string holding %s, got %s", jsonType(t), describeValue(src))
	}
	s := k.StringValue
	bad := func() *codecError {
		return codecErrorf("expected string holding %s, got %s", jsonType(t), describeValue(src))
	}
	switch t.Kind() {
	case reflect.Bool:
		switch s {
		case "true", "false":
			dst.SetBool(s == "true")
		default:
			return bad()
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, t.Bits())
		if errors.Is(err, strconv.ErrRange) {
			return codecErrorf("value %s overflows %s", cutShort(s), t.Kind())
		} else if err != nil {
			return bad()
		}
		dst.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, err := strconv.ParseUint(s, 10, t.Bits())
		if _, signed := strconv.ParseInt(s, 10, 64); errors.Is(err, strconv.ErrRange) || err != nil && signed == nil {
			return codecErrorf("value %s overflows %s", cutShort(s), t.Kind())
		} else if err != nil {
			return bad()
		}
		dst.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, t.Bits())
		if errors.Is(err, strconv.ErrRange) {
			return codecErrorf("value %s overflows %s", cutShort(s), t.Kind())
		} else if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return bad()
		}
		dst.SetFloat(f)
	default: // reflect.String
		var out string
		if err := json.Unmarshal([]byte(s), &out); err != nil {
			return bad()
		}
		dst.SetString(out)
	}
	return nil
}
