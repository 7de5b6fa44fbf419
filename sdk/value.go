package sdk

import (
	"cmp"
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
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/structpb"
)

// Arguments and results cross the wire as *structpb.Value: JSON's null, number (a double), string,
// boolean, list and struct. This file converts between those and typed Go values by reflection. Struct
// tags are read as encoding/json reads them; decoding is strict: a value that does not fit its Go type
// is an error naming where it is and why, never a silent zero.

// ValueError says which value did not decode and why.
type ValueError struct {
	// Path names the value, e.g. "argument 2" or "config.ports[1].host". For an error from encoding it
	// is relative to the encoded value, and empty when the value itself is at fault.
	Path string
	// Msg says what is wrong with the value.
	Msg string
}

// Error returns "<path>: <msg>", or only the message when Path is empty.
func (e *ValueError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// maxDepth bounds how deeply a value may nest, so that a pointer cycle or a hostile input fails with an
// error instead of exhausting the stack.
const maxDepth = 1000

// shortLen is about how much of a value an error message quotes.
const shortLen = 40

// codecError is a ValueError under construction. Path steps are collected innermost first while the
// error travels up, so a call that succeeds never builds a path.
type codecError struct {
	segs []string
	msg  string
}

func codecErrorf(format string, args ...any) *codecError {
	return &codecError{msg: fmt.Sprintf(format, args...)}
}

func (e *codecError) at(seg string) *codecError {
	e.segs = append(e.segs, seg)
	return e
}

func (e *codecError) valueError(path string) *ValueError {
	const maxSegs = 16 // a path through a pointer cycle would be maxDepth steps long
	var b strings.Builder
	b.WriteString(path)
	for i := len(e.segs) - 1; i >= 0; i-- {
		seg := e.segs[i]
		if len(e.segs)-i > maxSegs {
			b.WriteString("...")
			break
		}
		if b.Len() == 0 {
			seg = strings.TrimPrefix(seg, ".")
		}
		b.WriteString(seg)
	}
	return &ValueError{Path: b.String(), Msg: e.msg}
}

// keySeg renders an object key as a path step: ".name", or `["odd key"]` when it is not identifier-like.
func keySeg(key string) string {
	for i, c := range key {
		if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && (c == '-' || '0' <= c && c <= '9') {
			continue
		}
		return "[" + strconv.Quote(key) + "]"
	}
	if key == "" {
		return `[""]`
	}
	return "." + key
}

func indexSeg(i int) string { return "[" + strconv.Itoa(i) + "]" }

// typeMismatch is the error for a value of the wrong JSON type.
func typeMismatch(t reflect.Type, src *structpb.Value) *codecError {
	return codecErrorf("expected %s, got %s", jsonType(t), describeValue(src))
}

// Types the codec treats specially.
var (
	jsonMarshalerType   = reflect.TypeFor[json.Marshaler]()
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	isZeroerType        = reflect.TypeFor[interface{ IsZero() bool }]()
	durationType        = reflect.TypeFor[time.Duration]()
	timeType            = reflect.TypeFor[time.Time]()
	pbValueType         = reflect.TypeFor[*structpb.Value]()
	pbStructType        = reflect.TypeFor[*structpb.Struct]()
	pbListType          = reflect.TypeFor[*structpb.ListValue]()
)

// codec says how a type is converted when its reflect.Kind alone does not decide it.
type codec uint8

const (
	byKind codec = iota
	viaPBValue
	viaPBStruct
	viaPBList
	viaDuration
	viaTime
	viaJSON  // json.Marshaler or json.Unmarshaler
	viaText  // encoding.TextMarshaler or encoding.TextUnmarshaler
	badBytes // []byte, which has no JSON form on this wire
)

// typeInfo is what the codec knows about one type. It is built once per type and cached, because
// encoding and decoding run on every driver call.
type typeInfo struct {
	enc, dec  codec
	encPtr    bool                  // the marshal method has a pointer receiver
	fields    []fieldInfo           // structs: the keys, in field order
	byName    map[string]*fieldInfo // structs: fields by key
	validKeys string                // structs: the keys, sorted, for error messages
}

// fieldInfo is one key of a struct type, found the way encoding/json finds it.
type fieldInfo struct {
	name      string
	doc       string
	index     []int // the path through embedded structs
	typ       reflect.Type
	tagged    bool // the name comes from a json tag
	omitEmpty bool
	omitZero  bool
	quoted    bool // the ",string" option: a scalar carried as a string
}

var typeCache sync.Map // reflect.Type -> *typeInfo

func infoFor(t reflect.Type) *typeInfo {
	if ti, ok := typeCache.Load(t); ok {
		return ti.(*typeInfo)
	}
	ti, _ := typeCache.LoadOrStore(t, buildInfo(t))
	return ti.(*typeInfo)
}

func buildInfo(t reflect.Type) *typeInfo {
	ti := &typeInfo{}
	switch {
	case t == pbValueType:
		ti.enc, ti.dec = viaPBValue, viaPBValue
	case t == pbStructType:
		ti.enc, ti.dec = viaPBStruct, viaPBStruct
	case t == pbListType:
		ti.enc, ti.dec = viaPBList, viaPBList
	case t == durationType:
		ti.enc, ti.dec = viaDuration, viaDuration
	case t == timeType:
		ti.enc, ti.dec = viaTime, viaTime
	case t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface:
		// Converted by what they point to or hold.
	default:
		pt := reflect.PointerTo(t)
		switch {
		case t.Implements(jsonMarshalerType):
			ti.enc = viaJSON
		case pt.Implements(jsonMarshalerType):
			ti.enc, ti.encPtr = viaJSON, true
		case t.Implements(textMarshalerType):
			ti.enc = viaText
		case pt.Implements(textMarshalerType):
			ti.enc, ti.encPtr = viaText, true
		case isBytes(t):
			ti.enc = badBytes
		}
		switch {
		case pt.Implements(jsonUnmarshalerType):
			ti.dec = viaJSON
		case pt.Implements(textUnmarshalerType):
			ti.dec = viaText
		case isBytes(t):
			ti.dec = badBytes
		}
		if t.Kind() == reflect.Struct {
			ti.fields = structFields(t)
			ti.byName = make(map[string]*fieldInfo, len(ti.fields))
			names := make([]string, len(ti.fields))
			for i := range ti.fields {
				ti.byName[ti.fields[i].name] = &ti.fields[i]
				names[i] = ti.fields[i].name
			}
			slices.Sort(names)
			ti.validKeys = strings.Join(names, ", ")
		}
	}
	return ti
}

// noBytes says why a byte slice cannot be an argument or a result.
const noBytes = "bytes are not a valid value; use a string, or a byte stream for binary data"

// bytesName names a byte slice type as its author wrote it: []byte, not []uint8.
func bytesName(t reflect.Type) string {
	if t.Name() == "" && t.Elem() == reflect.TypeFor[byte]() {
		return "[]byte"
	}
	return t.String()
}

// isBytes reports whether t is a byte slice that encoding/json would send as base64.
func isBytes(t reflect.Type) bool {
	if t.Kind() != reflect.Slice || t.Elem().Kind() != reflect.Uint8 {
		return false
	}
	pe := reflect.PointerTo(t.Elem())
	return !pe.Implements(jsonMarshalerType) && !pe.Implements(textMarshalerType)
}

// structFields lists the keys of struct type t with encoding/json's rules: exported fields, json tag
// names, "-" skipped, embedded structs flattened, and of several fields with one name the shallowest
// wins, then a tagged one; if that leaves a tie, none of them is a key.
func structFields(t reflect.Type) []fieldInfo {
	type candidate struct {
		typ   reflect.Type
		index []int
	}
	var fields []fieldInfo
	next := []candidate{{typ: t}}
	var count, nextCount map[reflect.Type]int
	visited := map[reflect.Type]bool{}
	for len(next) > 0 {
		current := next
		next = nil
		count, nextCount = nextCount, map[reflect.Type]int{}
		for _, c := range current {
			if visited[c.typ] {
				continue
			}
			visited[c.typ] = true
			for i := range c.typ.NumField() {
				sf := c.typ.Field(i)
				if sf.Anonymous {
					et := sf.Type
					if et.Kind() == reflect.Pointer {
						et = et.Elem()
					}
					if !sf.IsExported() && et.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				if !isValidTag(name) {
					name = ""
				}
				index := make([]int, len(c.index)+1)
				copy(index, c.index)
				index[len(c.index)] = i
				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if name != "" || !sf.Anonymous || ft.Kind() != reflect.Struct {
					f := fieldInfo{
						name:      name,
						doc:       sf.Tag.Get("doc"),
						index:     index,
						typ:       sf.Type,
						tagged:    name != "",
						omitEmpty: hasTagOption(opts, "omitempty"),
						omitZero:  hasTagOption(opts, "omitzero"),
						quoted:    hasTagOption(opts, "string") && quotable(ft),
					}
					if f.name == "" {
						f.name = sf.Name
					}
					fields = append(fields, f)
					if count[c.typ] > 1 {
						// The struct is embedded more than once at this depth: record a duplicate
						// so that the tie below removes the field.
						fields = append(fields, f)
					}
					continue
				}
				nextCount[ft]++
				if nextCount[ft] == 1 {
					next = append(next, candidate{typ: ft, index: index})
				}
			}
		}
	}

	slices.SortFunc(fields, func(a, b fieldInfo) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if c := cmp.Compare(len(a.index), len(b.index)); c != 0 {
			return c
		}
		if a.tagged != b.tagged {
			if a.tagged {
				return -1
			}
			return 1
		}
		return slices.Compare(a.index, b.index)
	})
	out := fields[:0]
	for i := 0; i < len(fields); {
		j := i + 1
		for j < len(fields) && fields[j].name == fields[i].name {
			j++
		}
		if j == i+1 || len(fields[i].index) != len(fields[i+1].index) || fields[i].tagged != fields[i+1].tagged {
			out = append(out, fields[i])
		}
		i = j
	}
	slices.SortFunc(out, func(a, b fieldInfo) int { return slices.Compare(a.index, b.index) })
	return out
}

func isValidTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

func hasTagOption(opts, name string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == name {
			return true
		}
	}
	return false
}

// quotable reports whether the ",string" option applies to t: plain booleans, numbers and strings.
func quotable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.String:
		ti := infoFor(t)
		return ti.enc == byKind && ti.dec == byKind
	}
	return false
}

// structKey is one key of a struct type as a schema shows it.
type structKey struct{ Name, Type, Description string }

// structKeys lists the keys a struct type (or pointer to one) decodes from, in field order, with their
// jsonType and their `doc:"..."` tag as description. Embedded structs are flattened like encoding/json
// does. It returns nil for other types.
func structKeys(t reflect.Type) []structKey {
	for i := 0; t != nil && t.Kind() == reflect.Pointer && i < maxDepth; i++ {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	fields := infoFor(t).fields
	keys := make([]structKey, len(fields))
	for i, f := range fields {
		typ := jsonType(f.typ)
		if f.quoted {
			typ = "string"
		}
		keys[i] = structKey{Name: f.name, Type: typ, Description: f.doc}
	}
	return keys
}

// jsonType names the JSON type a Go type takes: "string", "integer", "number", "boolean",
// "array of <elem>", "object", "any", "duration" (time.Duration: a string like "1m30s" or a number of
// seconds), "timestamp" (time.Time: an RFC 3339 string), "bytes" (a byte slice, which has no JSON form),
// "unsupported <type>", and "null" for no value (a nil type).
func jsonType(t reflect.Type) string {
	return jsonTypeDepth(t, 0)
}

func jsonTypeDepth(t reflect.Type, depth int) string {
	if t == nil {
		return "null"
	}
	if depth > 16 { // a recursive type such as type S []S
		return "any"
	}
	switch t {
	case resourceType:
		return "resource"
	case pbValueType:
		return "any"
	case pbStructType:
		return "object"
	case pbListType:
		return "array"
	case durationType:
		return "duration"
	case timeType:
		return "timestamp"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return jsonTypeDepth(t.Elem(), depth+1)
	case reflect.Interface:
		return "any"
	}
	ti := infoFor(t)
	switch {
	case ti.dec == viaJSON || ti.dec == byKind && ti.enc == viaJSON:
		return "any"
	case ti.dec == viaText || ti.dec == byKind && ti.enc == viaText:
		return "string"
	case ti.dec == badBytes:
		return "bytes"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array of " + jsonTypeDepth(t.Elem(), depth+1)
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return "unsupported " + t.String()
}

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

// describeValue renders a value for an error message: its JSON kind and a short rendering, e.g.
// `string "fast"`, or just the rendering for null and numbers, which say their kind themselves.
func describeValue(v *structpb.Value) string {
	switch k := v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		return formatNumber(k.NumberValue)
	case *structpb.Value_StringValue:
		return "string " + shortJSON(v)
	case *structpb.Value_BoolValue:
		return "boolean " + strconv.FormatBool(k.BoolValue)
	case *structpb.Value_ListValue:
		return "array " + shortJSON(v)
	case *structpb.Value_StructValue:
		return "object " + shortJSON(v)
	}
	return "null"
}

// shortJSON renders v as JSON, cut to about shortLen bytes.
func shortJSON(v *structpb.Value) string {
	w := jsonWriter{limit: shortLen}
	w.value(v)
	return cutShort(string(w.b))
}

// quoteShort quotes s Go-style (showing invalid UTF-8 as it is), cut to about shortLen bytes.
func quoteShort(s string) string { return strconv.Quote(cutShort(s)) }

// cutShort cuts s to about shortLen bytes.
func cutShort(s string) string {
	if len(s) <= shortLen {
		return s
	}
	cut := shortLen - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// formatNumber renders a double as JSON does ("300", "1.5", "1e+21"), and NaN and infinities as Go does.
func formatNumber(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return string(appendFloat(nil, f, 64))
}

// appendJSON appends v as compact JSON with sorted keys; it reports false if v holds a NaN or an
// infinity, which JSON cannot express.
func appendJSON(b []byte, v *structpb.Value) ([]byte, bool) {
	w := jsonWriter{b: b}
	w.value(v)
	return w.b, !w.bad
}

// jsonWriter writes a Value as compact JSON with sorted keys. With a limit it stops soon after writing
// that many bytes.
type jsonWriter struct {
	b     []byte
	limit int
	bad   bool // wrote a NaN or an infinity
}

func (w *jsonWriter) full() bool { return w.limit > 0 && len(w.b) > w.limit }

func (w *jsonWriter) value(v *structpb.Value) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		f := k.NumberValue
		if math.IsNaN(f) || math.IsInf(f, 0) {
			w.bad = true
		}
		w.b = append(w.b, formatNumber(f)...)
	case *structpb.Value_StringValue:
		s := k.StringValue
		if w.limit > 0 && len(s) > w.limit {
			s = s[:w.limit]
		}
		w.b = appendString(w.b, s)
	case *structpb.Value_BoolValue:
		w.b = strconv.AppendBool(w.b, k.BoolValue)
	case *structpb.Value_ListValue:
		w.b = append(w.b, '[')
		for i, e := range k.ListValue.GetValues() {
			if w.full() {
				return
			}
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.value(e)
		}
		w.b = append(w.b, ']')
	case *structpb.Value_StructValue:
		fields := k.StructValue.GetFields()
		w.b = append(w.b, '{')
		for i, key := range slices.Sorted(maps.Keys(fields)) {
			if w.full() {
				return
			}
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = appendString(w.b, key)
			w.b = append(w.b, ':')
			w.value(fields[key])
		}
		w.b = append(w.b, '}')
	default:
		w.b = append(w.b, "null"...)
	}
}

// appendFloat formats a finite float as encoding/json does.
func appendFloat(b []byte, f float64, bits int) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (bits == 64 && (abs < 1e-6 || abs >= 1e21) ||
		bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21)) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// Clean up e-09 to e-9.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
