package wire

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Limits a cloud must accept at least; the gateway stays below them.
const (
	MaxLine    = 256 << 10 // one envelope line, uncompressed
	MaxEntries = 5000      // entries in one batch
)

// Validate checks what every cloud checks before storing an envelope.
func (e *Envelope) Validate() error {
	switch {
	case e.Seq <= 0:
		return fmt.Errorf("seq %d: must be > 0", e.Seq)
	case e.Kind == "":
		return fmt.Errorf("seq %d: kind missing", e.Seq)
	case e.V <= 0:
		return fmt.Errorf("seq %d: v must be > 0", e.Seq)
	case len(e.Body) == 0 || e.Body[0] != '{':
		return fmt.Errorf("seq %d: body must be a JSON object", e.Seq)
	}
	return nil
}

// AppendBatch appends the gzip'd JSON-lines encoding of entries to dst.
func AppendBatch(dst *bytes.Buffer, entries []Envelope) error {
	zw, err := gzip.NewWriterLevel(dst, gzip.BestSpeed)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(zw) // Encode ends each value with '\n'
	for i := range entries {
		if err := enc.Encode(&entries[i]); err != nil {
			return fmt.Errorf("encode seq %d: %w", entries[i].Seq, err)
		}
	}
	return zw.Close()
}

// ErrMalformed wraps every decoding error of DecodeBatch.
var ErrMalformed = errors.New("wire: malformed batch")

// DecodeBatch reads a JSON-lines batch (already un-gzipped by the caller, or gzip'd
// when gzipped is true), validates each envelope and checks that seqs strictly
// increase. Empty lines are skipped.
func DecodeBatch(r io.Reader, gzipped bool) ([]Envelope, error) {
	if gzipped {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %w", ErrMalformed, err)
		}
		defer zr.Close()
		r = zr
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	var out []Envelope
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if len(out) == MaxEntries {
			return nil, fmt.Errorf("%w: more than %d entries", ErrMalformed, MaxEntries)
		}
		var e Envelope
		if err := json.Unmarshal(b, &e); err != nil {
			if rerr := sc.Err(); rerr != nil { // a cut-off body, not a bad line
				return nil, fmt.Errorf("%w: %w", ErrMalformed, rerr)
			}
			return nil, fmt.Errorf("%w: line %d: %w", ErrMalformed, line, err)
		}
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrMalformed, line, err)
		}
		if n := len(out); n > 0 && e.Seq <= out[n-1].Seq {
			return nil, fmt.Errorf("%w: line %d: seq %d does not follow %d", ErrMalformed, line, e.Seq, out[n-1].Seq)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return out, nil
}
