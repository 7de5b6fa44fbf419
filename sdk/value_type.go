package sdk

import (
	"cmp"
	"encoding"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"google.golang.org/protobuf/types/known/structpb"
)

// Go types as the value codec sees them: which codec each uses, its struct fields
// (read from json tags as encoding/json reads them), and its JSON type for messages.

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
	case resourceType, downloadType:
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
