package dc09_test

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file is a DC-09 receiver written for the tests only, independently of the
// package: its own CRC, length check, frame splitting and AES, so a shared bug in
// the package's encoder and parser cannot hide itself.

// crc16arc is CRC-16/ARC bit by bit (the package uses a table).
func crc16arc(b []byte) uint16 {
	var crc uint16
	for _, x := range b {
		for i := range 8 {
			bit := (uint16(x)>>i ^ crc) & 1
			crc >>= 1
			if bit != 0 {
				crc ^= 0xA001
			}
		}
	}
	return crc
}

func crcHeader(body []byte) string { return fmt.Sprintf("%04X%04X", crc16arc(body), len(body)) }

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

// request is one frame the stub received and checked.
type request struct {
	conn      int    // which connection (1, 2, ...)
	body      string // from '"' to before CR, decrypted content if it was encrypted
	id        string
	encrypted bool
	seq       string
	account   string
	content   string // after '[' (plain text)
	time      time.Time
}

var headRE = regexp.MustCompile(`^"(\*?)([A-Z-]+)"(\d{4})(?:R[0-9A-F]+)?L[0-9A-F]+#([0-9A-Za-z]+)\[(.*)$`)

// stub is the receiver. policy decides the answer (raw bytes, or nil for silence,
// or closeConn to drop the connection).
type stub struct {
	t      *testing.T
	ln     net.Listener
	got    chan request
	key    []byte
	mu     sync.Mutex
	policy func(r request) []byte
	conns  int
}

var closeConn = []byte("close")

func newStub(t *testing.T, key []byte, policy func(request) []byte) *stub {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &stub{t: t, ln: ln, got: make(chan request, 64), key: key, policy: policy}
	var wg sync.WaitGroup
	var live []net.Conn
	var liveMu sync.Mutex
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			n := s.conns
			s.mu.Unlock()
			liveMu.Lock()
			live = append(live, c)
			liveMu.Unlock()
			wg.Go(func() { s.serve(c, n) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		liveMu.Lock()
		for _, c := range live {
			c.Close()
		}
		liveMu.Unlock()
		wg.Wait()
	})
	return s
}

func (s *stub) addr() string { return s.ln.Addr().String() }

func (s *stub) setPolicy(p func(request) []byte) {
	s.mu.Lock()
	s.policy = p
	s.mu.Unlock()
}

func (s *stub) serve(c net.Conn, n int) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		if _, err := br.ReadString('\n'); err != nil {
			return
		}
		line, err := br.ReadString('\r')
		if err != nil {
			return
		}
		raw := strings.TrimSuffix(line, "\r")
		if len(raw) < 8 {
			s.t.Errorf("stub: short frame %q", raw)
			return
		}
		body := raw[8:]
		crc, _ := strconv.ParseUint(raw[:4], 16, 16)
		length, _ := strconv.ParseUint(raw[4:8], 16, 16)
		if raw[4] != '0' || int(length) != len(body) {
			s.t.Errorf("stub: length field %q but body is %d bytes", raw[4:8], len(body))
		}
		if uint16(crc) != crc16arc([]byte(body)) {
			s.t.Errorf("stub: crc field %q but body gives %04X", raw[:4], crc16arc([]byte(body)))
		}
		m := headRE.FindStringSubmatch(body)
		if m == nil {
			s.t.Errorf("stub: cannot read header of %q", body)
			return
		}
		r := request{conn: n, body: body, encrypted: m[1] == "*", id: m[2], seq: m[3], account: m[4], content: m[5]}
		if r.encrypted {
			r.content = s.decrypt(m[5])
			r.body = strings.TrimSuffix(body, m[5]) + r.content
		}
		if i := strings.LastIndexByte(r.content, '_'); i >= 0 {
			r.time, _ = time.Parse("15:04:05 01-02-2006", strings.Replace(r.content[i+1:], ",", " ", 1))
		}
		s.mu.Lock()
		p := s.policy
		s.mu.Unlock()
		out := p(r)
		s.got <- r
		switch {
		case bytes.Equal(out, closeConn):
			return
		case out != nil:
			if _, err := c.Write(out); err != nil {
				return
			}
		}
	}
}

// decrypt undoes DC-09 AES-CBC (zero IV, hex) and drops the pad up to its '|'.
func (s *stub) decrypt(h string) string {
	raw, err := hex.DecodeString(h)
	if err != nil || len(raw)%16 != 0 || len(s.key) == 0 {
		s.t.Errorf("stub: encrypted content %q is not hex AES blocks", h)
		return ""
	}
	b, _ := aes.NewCipher(s.key)
	cipher.NewCBCDecrypter(b, make([]byte, 16)).CryptBlocks(raw, raw)
	p := string(raw)
	i := strings.IndexByte(p, '|')
	if i < 0 || strings.ContainsAny(p[:i], "[]") {
		s.t.Errorf("stub: decrypted %q has no pad|", p)
		return p
	}
	return p[i+1:]
}

// encrypt builds DC-09 encrypted content: '0' pad (as some receivers send), no '|'.
func stubEncrypt(key []byte, content string) string {
	n := (16 - len(content)%16) % 16
	p := []byte(strings.Repeat("0", n) + content)
	b, _ := aes.NewCipher(key)
	cipher.NewCBCEncrypter(b, make([]byte, 16)).CryptBlocks(p, p)
	return strings.ToUpper(hex.EncodeToString(p))
}

func wire(body string) []byte { return []byte("\n" + crcHeader([]byte(body)) + body + "\r") }

func stubTime(t time.Time) string { return t.UTC().Format("_15:04:05,") + t.UTC().Format("01-02-2006") }

// ack answers r the plain way: "ACK"<seq>R0L0#<account>[].
func ack(r request) []byte {
	return wire(fmt.Sprintf(`"ACK"%sR0L0#%s[]`, r.seq, r.account))
}

func nak(now time.Time) []byte { return wire(`"NAK"0000R0L0A0[]` + stubTime(now)) }

func duh(r request) []byte { return wire(fmt.Sprintf(`"DUH"%sR0L0#%s[]`, r.seq, r.account)) }

func silent(request) []byte { return nil }

// next waits for the stub's next request; the deadline only keeps a broken test
// from hanging, it measures nothing.
func (s *stub) next() request {
	s.t.Helper()
	select {
	case r := <-s.got:
		return r
	case <-time.After(10 * time.Second):
		s.t.Fatal("stub: no frame arrived")
		return request{}
	}
}
