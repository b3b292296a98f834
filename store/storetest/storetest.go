// Package storetest finds personal data in a Vakt database's files, as they are on
// disk: the tests of every path that must remove something (G1, G4) grep the main
// file, its write-ahead log, its shared-memory file and a rollback journal for it.
package storetest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
)

// Files are the files SQLite keeps for the database at path.
func Files(path string) []string {
	return []string{path, path + "-wal", path + "-shm", path + "-journal"}
}

// Needles are the forms a value can take in the files: a string as its bytes; a
// float64 as text and as its 8 IEEE 754 bytes in both byte orders (SQLite stores a
// REAL big-endian; little-endian catches a copy made from memory).
func Needles(values ...any) map[string][]byte {
	out := map[string][]byte{}
	for _, v := range values {
		switch v := v.(type) {
		case string:
			out[strconv.Quote(v)] = []byte(v)
		case float64:
			s := strconv.FormatFloat(v, 'g', -1, 64)
			out[s] = []byte(s)
			out[s+" (binary, big-endian)"] = binary.BigEndian.AppendUint64(nil, math.Float64bits(v))
			out[s+" (binary, little-endian)"] = binary.LittleEndian.AppendUint64(nil, math.Float64bits(v))
		default:
			panic("storetest: needle of unsupported type")
		}
	}
	return out
}

// Found lists which needles occur in which of the files ("<needle> in <file>");
// missing files count as empty.
func Found(path string, needles map[string][]byte) ([]string, error) {
	var hits []string
	for _, name := range Files(path) {
		b, err := os.ReadFile(name)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		for what, n := range needles {
			if bytes.Contains(b, n) {
				hits = append(hits, what+" in "+filepath.Base(name))
			}
		}
	}
	return hits, nil
}
