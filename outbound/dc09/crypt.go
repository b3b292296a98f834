package dc09

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
)

// DC-09 encryption: everything after the opening '[' (data, ']', extended data and
// the timestamp) is prefixed with a pad so its length is a multiple of 16 bytes,
// encrypted with AES in CBC mode with an all-zero IV, and sent as upper-case hex.
// The pad is pseudo-random and contains none of '|', '[' or ']'; a '|' separates it
// from the content. Replies from receivers sometimes pad with '0's and no '|', so
// the decoder accepts both.

// padAlphabet holds the characters a pad is drawn from.
const padAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// ParseKey reads a key as written in a key file: 32, 48 or 64 hex digits (AES-128,
// -192, -256), surrounding white space ignored.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	k, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("dc09: key must be hex digits: %w", err)
	}
	if err := checkKey(k); err != nil {
		return nil, err
	}
	return k, nil
}

func checkKey(k []byte) error {
	switch len(k) {
	case 16, 24, 32:
		return nil
	}
	return fmt.Errorf("dc09: key is %d bytes; AES needs 16, 24 or 32 (32, 48 or 64 hex digits)", len(k))
}

func encrypt(key, content []byte) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("dc09: %w", err)
	}
	n := aes.BlockSize - (len(content)+1)%aes.BlockSize // pad + '|' + content
	if n == aes.BlockSize {
		n = 0
	}
	plain := make([]byte, n+1+len(content))
	rnd := make([]byte, n)
	if _, err := rand.Read(rnd); err != nil {
		return nil, fmt.Errorf("dc09: pad: %w", err)
	}
	for i, r := range rnd {
		plain[i] = padAlphabet[int(r)%len(padAlphabet)]
	}
	plain[n] = '|'
	copy(plain[n+1:], content)
	var iv [aes.BlockSize]byte
	cipher.NewCBCEncrypter(block, iv[:]).CryptBlocks(plain, plain)
	const digits = "0123456789ABCDEF"
	out := make([]byte, 2*len(plain))
	for i, c := range plain {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&0x0F]
	}
	return out, nil
}

// decrypt returns the content of s (hex after '['), pad removed.
func decrypt(key []byte, s string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) == 0 || len(raw)%aes.BlockSize != 0 {
		return "", fmt.Errorf("%w: content is not whole AES blocks in hex", ErrDecrypt)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", fmt.Errorf("dc09: %w", err)
	}
	var iv [aes.BlockSize]byte
	cipher.NewCBCDecrypter(block, iv[:]).CryptBlocks(raw, raw)
	p := string(raw)
	// The pad ends at the first '|' before any ']'; without one (a '0'-filled
	// reply), it is the run before the data, which then must start at ']' or '#'.
	bar, close := strings.IndexByte(p, '|'), strings.IndexByte(p, ']')
	switch {
	case close < 0:
		return "", fmt.Errorf("%w: no ']' in decrypted content", ErrDecrypt)
	case bar >= 0 && bar < close && !strings.ContainsAny(p[:bar], "[]#"):
		p = p[bar+1:]
	default:
		i := strings.IndexAny(p, "#]")
		p = p[i:]
	}
	if !printable(strings.TrimRight(p, "\x00"), "") {
		return "", fmt.Errorf("%w: decrypted content is not printable", ErrDecrypt)
	}
	return p, nil
}
