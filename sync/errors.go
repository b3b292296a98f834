package sync

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/vakt/vakt/sync/wire"
)

// Reasons name the cause of a failure; the gateway puts a fatal one into the
// technical alarm it raises.
const (
	ReasonUnreachable = "cloud-unreachable" // network error, timeout, connection dropped
	ReasonServer      = "cloud-server"      // 5xx
	ReasonBusy        = "cloud-busy"        // 429 / 503 with Retry-After
	ReasonTLS         = "cloud-tls"         // the certificate did not verify
	ReasonAuth        = "cloud-auth"        // 401 / 403: token unknown or for another gateway
	ReasonRejected    = "cloud-rejected"    // 400: the cloud calls the batch malformed
	ReasonConflict    = "cloud-conflict"    // 409: gap or a seq stored with other content
	ReasonTooLarge    = "cloud-too-large"   // 413 even for a single entry
	ReasonProtocol    = "cloud-protocol"    // an answer outside the contract
	ReasonLocal       = "outbox"            // reading or acknowledging the local outbox failed
)

// Error is a failed exchange with the cloud, classified: Fatal errors are not retried
// on the usual backoff (a token, certificate or conflict does not fix itself); the
// uploader reports them and tries again only after Options.FatalRetry.
type Error struct {
	Op         string // "upload", "state", "directory"
	Status     int    // HTTP status; 0 when there was no answer
	Code       string // the contract's error code from the answer, if any
	Message    string // the cloud's message, if any
	Reason     string
	Fatal      bool
	RetryAfter time.Duration // from Retry-After, 0 if none
	Err        error
}

func (e *Error) Error() string {
	s := "cloud " + e.Op
	if e.Status != 0 {
		s += ": " + strconv.Itoa(e.Status) + " " + http.StatusText(e.Status)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	switch e.Reason {
	case ReasonTLS:
		s += " (the cloud's certificate is not trusted: set cloud.ca_file to its CA, or fix the host name in cloud.url)"
	case ReasonAuth:
		s += " (check cloud.token_file and site.id)"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

func transportError(op string, err error) *Error {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	if errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify) {
		return &Error{Op: op, Reason: ReasonTLS, Fatal: true, Err: err}
	}
	return &Error{Op: op, Reason: ReasonUnreachable, Err: err}
}

func statusError(op string, resp *http.Response, body []byte) *Error {
	e := &Error{Op: op, Status: resp.StatusCode}
	var we wire.Error
	if json.Unmarshal(body, &we) == nil {
		e.Code, e.Message = we.Code, we.Message
	}
	if len(e.Message) > 300 {
		e.Message = e.Message[:300]
	}
	switch s := resp.StatusCode; {
	case s == http.StatusTooManyRequests || s == http.StatusServiceUnavailable:
		e.Reason = ReasonBusy
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	case s == http.StatusRequestTimeout || s == http.StatusTooEarly || s >= 500:
		e.Reason = ReasonServer
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		e.Reason, e.Fatal = ReasonAuth, true
	case s == http.StatusConflict:
		e.Reason, e.Fatal = ReasonConflict, true
	case s == http.StatusRequestEntityTooLarge:
		e.Reason, e.Fatal = ReasonTooLarge, true
	case s == http.StatusBadRequest:
		e.Reason, e.Fatal = ReasonRejected, true
	default: // any other 4xx or an unexpected 1xx/3xx: outside the contract
		e.Reason, e.Fatal = ReasonProtocol, true
	}
	return e
}

// maxRetryAfter bounds a Retry-After we obey; beyond it (or from an HTTP date that a
// wrong wall clock — a box booted in 1970 — turns into decades) we use our own backoff.
const maxRetryAfter = time.Hour

func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 || n > int(maxRetryAfter/time.Second) { // checked before multiplying: no overflow
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 && d <= maxRetryAfter {
			return d
		}
	}
	return 0
}

func asError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

func localError(op string, err error) *Error {
	return &Error{Op: op, Reason: ReasonLocal, Err: fmt.Errorf("local outbox: %w", err)}
}
