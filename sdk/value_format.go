package sdk

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/structpb"
)

// Rendering values for error messages: short, JSON-like, bounded in length.

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
