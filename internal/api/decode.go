package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/tailscale/hujson"

	"github.com/smek/action/internal/cluster"
)

// maxBody bounds request bodies.
const maxBody = 64 << 10

// decodeBody reads a JSON object from the request into dst. Comments and
// trailing commas are accepted (the seed's examples have both), and so is an
// object written without its outer braces, as the seed's curl examples send
// it. Unknown fields, wrong types and trailing data are clear 400s naming
// the field; a body over 64 KiB is a 413.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return cluster.Errorf(cluster.ETOOLARGE, "", "the request body is larger than %d KiB", maxBody>>10)
		}
		return cluster.Errorf(cluster.EINVALID, "", "the request body could not be read")
	}
	return decodeJSON(b, dst)
}

// decodeJSON decodes one JSON object (with comments and trailing commas
// allowed) into dst, a pointer to a struct with json tags.
func decodeJSON(b []byte, dst any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return cluster.Errorf(cluster.EINVALID, "", "the request body is empty; send a JSON object")
	}
	v, err := hujson.Parse(b)
	if err != nil {
		wrapped, werr := hujson.Parse(append(append([]byte("{"), b...), '\n', '}'))
		if werr != nil || !startsWithKey(b) {
			return cluster.Errorf(cluster.EINVALID, "", "the request body is not valid JSON: %s", parseMessage(err))
		}
		v = wrapped
	}
	if v.Value.Kind() != '{' {
		return cluster.Errorf(cluster.EINVALID, "", "the request body must be a JSON object")
	}
	v.Standardize()
	std := v.Pack()

	if err := checkFields(std, reflect.TypeOf(dst), ""); err != nil {
		return err
	}
	if err := json.Unmarshal(std, dst); err != nil {
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return cluster.Errorf(cluster.EINVALID, te.Field, "%s must be %s, not a JSON %s", te.Field, typeName(te.Type), te.Value)
		}
		return cluster.Errorf(cluster.EINVALID, "", "the request body could not be decoded")
	}
	return nil
}

// startsWithKey reports whether b, after blanks and comments, starts with a
// string: the shape of an object without braces.
func startsWithKey(b []byte) bool {
	for {
		b = bytes.TrimLeft(b, " \t\r\n")
		switch {
		case bytes.HasPrefix(b, []byte("//")):
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				return false
			}
			b = b[i:]
		case bytes.HasPrefix(b, []byte("/*")):
			i := bytes.Index(b, []byte("*/"))
			if i < 0 {
				return false
			}
			b = b[i+2:]
		default:
			return len(b) > 0 && b[0] == '"'
		}
	}
}

func parseMessage(err error) string {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

// checkFields rejects object keys that t (a struct, or a pointer to one)
// does not know, at any depth, naming the first as "run.bogus". Names must
// match exactly: encoding/json alone would take "RUN-ID" for "run-id".
func checkFields(raw []byte, t reflect.Type, prefix string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeFor[time.Time]() {
		return nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil // not an object: the typed decode names the field
	}
	names, known := fieldsOf(t)
	keys := slices.Sorted(maps.Keys(fields))
	for _, k := range keys {
		ft, ok := known[k]
		if !ok {
			return cluster.Errorf(cluster.EINVALID, prefix+k, "unknown field %q; known fields: %s", short(prefix+k), strings.Join(names, ", "))
		}
		if err := checkFields(fields[k], ft, prefix+k+"."); err != nil {
			return err
		}
	}
	return nil
}

// fieldsOf lists the json names of a struct type's fields, in order, and
// their types.
func fieldsOf(t reflect.Type) ([]string, map[string]reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var names []string
	types := map[string]reflect.Type{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
			types[name] = f.Type
		}
	}
	return names, types
}

// jsonFields lists the json names of v's struct fields.
func jsonFields(v any) []string {
	names, _ := fieldsOf(reflect.TypeOf(v))
	return names
}

func typeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "a whole number"
	case reflect.String:
		return "a string"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return fmt.Sprintf("a %s", t.Kind())
}

func short(s string) string { return cluster.Truncate(s, 64) }
