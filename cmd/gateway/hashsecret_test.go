package main

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestHashSecret: the hash printed for a secret on stdin verifies against it at the
// cost asked for; a short secret or a cheap cost is refused and nothing is printed.
func TestHashSecret(t *testing.T) {
	var out bytes.Buffer
	if err := cmdHashSecret([]string{"-cost", "10"}, strings.NewReader("a long enough secret\n"), &out); err != nil {
		t.Fatal(err)
	}
	h := strings.TrimSpace(out.String())
	if bcrypt.CompareHashAndPassword([]byte(h), []byte("a long enough secret")) != nil {
		t.Fatalf("hash %q does not verify", h)
	}
	if c, _ := bcrypt.Cost([]byte(h)); c != 10 {
		t.Errorf("cost %d, want 10", c)
	}
	for _, tc := range []struct {
		args []string
		in   string
	}{{nil, "short\n"}, {[]string{"-cost", "4"}, "a long enough secret\n"}} {
		out.Reset()
		if err := cmdHashSecret(tc.args, strings.NewReader(tc.in), &out); err == nil || out.Len() != 0 {
			t.Errorf("%v %q: err %v, printed %q", tc.args, tc.in, err, out.String())
		}
	}
}
