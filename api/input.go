package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/vigil-ha/vigil/engine"
)

// MaxBody is the largest request body the API reads (Masakari's notification
// endpoint keeps its own limit): a larger one is a 413.
const MaxBody = 1 << 20

// statusError is a refused request whose status is not 400 (413, 415).
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

// decode reads a request's JSON body strictly: Content-Type application/json
// (415), at most MaxBody bytes (413), exactly one JSON document, no duplicate
// keys, no key that differs only in case from a field (encoding/json would take
// it), no unknown field. Its errors name the field or the offset.
func decode(r *http.Request, v any) error {
	data, err := readBody(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return &engine.InvalidError{Field: "body", Msg: "empty; want a JSON object"}
	}
	if err := checkKeys(data, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if rest := bytes.TrimSpace(data[dec.InputOffset():]); len(rest) > 0 {
		return &engine.InvalidError{Field: "body", Msg: fmt.Sprintf("trailing data after the JSON document at byte %d: want exactly one JSON document", dec.InputOffset())}
	}
	return nil
}

// readBody checks the Content-Type of a non-empty body and reads at most MaxBody bytes.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > MaxBody {
		return nil, tooLarge(r.ContentLength)
	}
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBody))
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return nil, tooLarge(-1)
	}
	if err != nil {
		return nil, &engine.InvalidError{Field: "body", Msg: "cannot read it: " + err.Error()}
	}
	if len(data) > 0 {
		if err := checkJSONType(r.Header.Get("Content-Type")); err != nil {
			return nil, err
		}
	}
	return data, nil
}

func tooLarge(n int64) error {
	msg := fmt.Sprintf("request body too large: at most %d bytes (1 MiB)", MaxBody)
	if n > 0 {
		msg = fmt.Sprintf("request body too large (%d bytes): at most %d bytes (1 MiB)", n, MaxBody)
	}
	return &statusError{code: http.StatusRequestEntityTooLarge, msg: msg}
}

// checkJSONType accepts application/json, with parameters (charset=utf-8) or not.
func checkJSONType(ct string) error {
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		return &statusError{code: http.StatusUnsupportedMediaType,
			msg: fmt.Sprintf("Content-Type %q: the body must be application/json", ct)}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return &statusError{code: http.StatusUnsupportedMediaType,
			msg: fmt.Sprintf("Content-Type %q: the body must be UTF-8 JSON", ct)}
	}
	return nil
}

// decodeError turns encoding/json's errors into ones naming the field or the offset.
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return &engine.InvalidError{Field: te.Field, Msg: fmt.Sprintf("must be %s, got JSON %s", te.Type, te.Value)}
	case errors.As(err, &se):
		return &engine.InvalidError{Field: "body", Msg: fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, err)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &engine.InvalidError{Field: "body", Msg: "malformed JSON: it ends before the object is complete"}
	case errors.Is(err, io.EOF):
		return &engine.InvalidError{Field: "body", Msg: "empty; want a JSON object"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &engine.InvalidError{Field: f, Msg: "unknown field"}
	}
	return &engine.InvalidError{Field: "body", Msg: err.Error()}
}

// checkKeys walks the document's tokens beside the Go type it decodes into and
// refuses, in any object at any depth, a key given twice and a key that is not
// exactly a field's name but equals one in another case (encoding/json matches
// keys case-insensitively, so {"NAME": ...} would set name).
func checkKeys(data []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := walkValue(dec, t, ""); err != nil {
		return err
	}
	return nil
}

// walkValue reads one value; t is the Go type it goes into (nil: any).
func walkValue(dec *json.Decoder, t reflect.Type, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return decodeError0(err)
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch tok {
	case json.Delim('{'):
		return walkObject(dec, t, path)
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walkValue(dec, elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ]
		return decodeError0(err)
	}
	return nil
}

func walkObject(dec *json.Decoder, t reflect.Type, path string) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return decodeError0(err)
		}
		key, _ := tok.(string)
		field := keyPath(path, key)
		if seen[key] {
			return &engine.InvalidError{Field: field, Msg: "given twice: each key once"}
		}
		seen[key] = true
		var ft reflect.Type
		switch {
		case t != nil && t.Kind() == reflect.Struct:
			f, exact := fieldOf(t, key)
			if f != nil && !exact {
				return &engine.InvalidError{Field: field, Msg: fmt.Sprintf("unknown field: keys are case-sensitive, did you mean %q?", jsonName(*f))}
			}
			if f != nil {
				ft = f.Type
			}
		case t != nil && t.Kind() == reflect.Map:
			ft = t.Elem()
		}
		if err := walkValue(dec, ft, field); err != nil {
			return err
		}
	}
	_, err := dec.Token() // }
	return decodeError0(err)
}

// decodeError0 is decodeError inside a document, where its end is premature.
func decodeError0(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return decodeError(err)
	}
	return nil
}

func keyPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldOf finds the struct field a JSON key names: exactly, or else in another case.
func fieldOf(t reflect.Type, key string) (f *reflect.StructField, exact bool) {
	var folded *reflect.StructField
	for _, sf := range reflect.VisibleFields(t) {
		if !sf.IsExported() || sf.Anonymous && sf.Tag.Get("json") == "" {
			continue
		}
		name := jsonName(sf)
		if name == "-" {
			continue
		}
		if name == key {
			return &sf, true
		}
		if folded == nil && strings.EqualFold(name, key) {
			folded = &sf
		}
	}
	return folded, false
}

func jsonName(sf reflect.StructField) string {
	tag := sf.Tag.Get("json")
	if tag == "-" {
		return "-"
	}
	if name, _, _ := strings.Cut(tag, ","); name != "" {
		return name
	}
	return sf.Name
}

// pathParam is a path parameter as the client meant it. chi routes on the
// escaped path when it holds an escape the plain path cannot (a%2Fb), and then
// gives the parameter escaped: the name "a/b" of a cluster stored before names
// were checked comes back as a/b, so it can be deleted.
func pathParam(r *http.Request, key string) string {
	v := chi.URLParam(r, key)
	if r.URL.RawPath == "" {
		return v
	}
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}
