package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

func hasBody(r *http.Request) bool {
	return r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
}

func isJSON(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

// decode reads a bounded JSON body strictly: unknown fields, duplicate fields,
// control characters in strings and trailing data are 400; an oversize body is 413;
// a body that does not arrive within BodyTimeout is 408.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if !isJSON(r.Header.Get("Content-Type")) {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "a request body must be sent with Content-Type: application/json")
		return false
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(s.opt.BodyTimeout))
	r.Body = http.MaxBytesReader(w, r.Body, s.opt.MaxBody)
	data, err := io.ReadAll(r.Body)
	if err != nil {
		// The deadline stays: the server must not wait for the rest of a stalled
		// body before closing the connection.
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", "request body too large")
		case errors.Is(err, os.ErrDeadlineExceeded):
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusRequestTimeout, "timeout", "request body not sent in time")
		default:
			writeError(w, http.StatusBadRequest, "bad_request", "request body could not be read")
		}
		return false
	}
	_ = rc.SetReadDeadline(time.Time{})
	if err := checkJSON(data); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "invalid JSON body: "+err.Error())
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "invalid JSON body: "+jsonProblem(err))
		return false
	}
	return true
}

func jsonProblem(err error) string {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return "field " + ute.Field + " has the wrong type or is out of range"
	}
	if errors.Is(err, io.EOF) {
		return "empty body"
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "json: unknown field") {
		return strings.TrimPrefix(msg, "json: ")
	}
	return "malformed"
}

// checkJSON walks one JSON value and refuses what encoding/json lets through: an
// object naming a field twice (which copy wins differs between parsers, so a proxy
// and the gateway could disagree), control characters in any string (they end up
// in logs and in the cloud's records), and trailing data.
func checkJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		object  bool
		wantKey bool
		key     string
		keys    map[string]bool
	}
	var stack []*frame
	seen := false // a first token was read
	path := func(last string) string {
		var parts []string
		for _, f := range stack {
			if f.object && f.key != "" {
				parts = append(parts, f.key)
			}
		}
		if last != "" {
			parts = append(parts, last)
		}
		return strings.Join(parts, ".")
	}
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if !seen {
				return errors.New("empty body")
			}
			return errors.New("malformed")
		}
		if err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return fmt.Errorf("malformed at byte %d", se.Offset)
			}
			return errors.New("malformed")
		}
		seen = true
		top := (*frame)(nil)
		if n := len(stack); n > 0 {
			top = stack[n-1]
		}
		if top != nil && top.object && top.wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				valueDone()
				if len(stack) == 0 {
					break
				}
				continue
			}
			key := tok.(string) // the decoder guarantees a string here
			if top.keys[key] {
				return fmt.Errorf("field %s appears twice", strconv.Quote(path(key)))
			}
			if controlChar(key) {
				return fmt.Errorf("a field name contains control characters")
			}
			top.keys[key] = true
			top.key, top.wantKey = key, false
			continue
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, &frame{object: true, wantKey: true, keys: map[string]bool{}})
				continue
			case '[':
				stack = append(stack, &frame{})
				continue
			default: // ']'
				stack = stack[:len(stack)-1]
			}
		case string:
			if controlChar(t) {
				return fmt.Errorf("field %s contains control characters", strconv.Quote(path("")))
			}
		}
		valueDone()
		if len(stack) == 0 {
			break
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}

// controlChar reports C0 and C1 control characters, DEL, and invalid UTF-8. Tab,
// newline and carriage return are control characters too: no field of this API is
// multi-line.
func controlChar(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == '\u2028' || r == '\u2029' {
			return true
		}
	}
	return false
}

// textField checks one string field: at most max bytes, no control characters.
func (s *Server) textField(w http.ResponseWriter, name, v string, max int) bool {
	switch {
	case len(v) > max:
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("%s is at most %d characters", name, max))
		return false
	case controlChar(v):
		writeError(w, http.StatusBadRequest, "bad_request", name+" contains control characters")
		return false
	}
	return true
}
