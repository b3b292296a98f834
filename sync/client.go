// Package sync is the gateway's side of the cloud sync contract (docs/sync-protocol.md):
// an Uploader that drains the outbox to the cloud in sequence order, deleting entries
// only after the cloud acknowledged them, and a Directory fetcher that brings the staff
// directory and erasure requests down. It shadows the standard library's name:
// importers alias it, e.g. cloudsync "github.com/vakt/vakt/sync".
//
// It writes nothing itself. The outbox and the directory are behind small interfaces
// (Outbox, ApplyFunc) that the gateway wires to engine operations, so every change
// still goes through the one writer.
package sync

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vakt/vakt/sync/wire"
)

// Config is how to reach the cloud.
type Config struct {
	// URL is the cloud's base URL, e.g. https://cloud.example.com/vakt. It must be
	// https unless AllowHTTP (demo mode only).
	URL string
	// Gateway is this gateway's id (site.id); Token its bearer token (from a 0600
	// secret file; never logged).
	Gateway string
	Token   string
	// CAFile is a PEM bundle to trust instead of the system's roots; RootCAs the
	// same as a pool (tests). Certificates are always verified.
	CAFile  string
	RootCAs *x509.CertPool
	// AllowHTTP permits a plain http:// URL. Demo mode only.
	AllowHTTP bool
	// Timeout bounds one request (default 30s): a stalled cloud is retried.
	Timeout time.Duration
}

// Client speaks the contract's HTTP. Safe for concurrent use.
type Client struct {
	base    string
	gateway string
	auth    string
	hc      *http.Client
}

// NewClient checks cfg and returns a client. It opens no connection.
func NewClient(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("cloud.url %q: not an absolute URL", cfg.URL)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && cfg.AllowHTTP:
	case u.Scheme == "http":
		return nil, fmt.Errorf("cloud.url %q: plain http is allowed in demo mode only; use https", cfg.URL)
	default:
		return nil, fmt.Errorf("cloud.url %q: scheme must be https", cfg.URL)
	}
	if cfg.Gateway == "" {
		return nil, errors.New("cloud: gateway id (site.id) is empty")
	}
	if strings.TrimSpace(cfg.Token) == "" {
		return nil, errors.New("cloud: token is empty; set cloud.token_file")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	roots := cfg.RootCAs
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cloud.ca_file: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cloud.ca_file %s: no PEM certificate in it", cfg.CAFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	tr.MaxIdleConnsPerHost = 2
	return &Client{
		base:    strings.TrimSuffix(u.String(), "/"),
		gateway: cfg.Gateway,
		auth:    "Bearer " + cfg.Token,
		hc:      &http.Client{Transport: tr, Timeout: cfg.Timeout},
	}, nil
}

// Close drops idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func (c *Client) url(path string) string {
	return c.base + strings.Replace(path, "{gateway}", url.PathEscape(c.gateway), 1)
}

// Upload posts one batch that directly follows seq after, and returns the cloud's ack.
func (c *Client) Upload(ctx context.Context, after int64, entries []wire.Envelope) (wire.Ack, error) {
	body, e := encode(entries)
	if e != nil {
		return wire.Ack{}, e
	}
	return c.post(ctx, after, body)
}

func encode(entries []wire.Envelope) ([]byte, *Error) {
	var buf bytes.Buffer
	if err := wire.AppendBatch(&buf, entries); err != nil {
		return nil, &Error{Op: "upload", Fatal: true, Reason: ReasonProtocol, Err: err}
	}
	return buf.Bytes(), nil
}

// post sends an encoded batch.
func (c *Client) post(ctx context.Context, after int64, body []byte) (wire.Ack, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(wire.PathEntries), bytes.NewReader(body))
	if err != nil {
		return wire.Ack{}, &Error{Op: "upload", Fatal: true, Reason: ReasonProtocol, Err: err}
	}
	req.Header.Set("Content-Type", wire.ContentType)
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set(wire.HeaderAfter, strconv.FormatInt(after, 10))
	var ack wire.Ack
	err = c.do(req, "upload", &ack)
	return ack, err
}

// State returns what the cloud has committed and its audit-head anchor.
func (c *Client) State(ctx context.Context) (wire.State, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(wire.PathState), nil)
	if err != nil {
		return wire.State{}, err
	}
	var st wire.State
	err = c.do(req, "state", &st)
	return st, err
}

// Directory returns one page of directory changes after cursor.
func (c *Client) Directory(ctx context.Context, cursor string, limit int) (wire.DirectoryPage, error) {
	q := url.Values{"cursor": {cursor}, "limit": {strconv.Itoa(limit)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(wire.PathDirectory)+"?"+q.Encode(), nil)
	if err != nil {
		return wire.DirectoryPage{}, err
	}
	var p wire.DirectoryPage
	err = c.do(req, "directory", &p)
	return p, err
}

func (c *Client) do(req *http.Request, op string, into any) error {
	req.Header.Set("Authorization", c.auth)
	req.Header.Set(wire.HeaderProtocol, strconv.Itoa(wire.Protocol))
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return ctxErr
		}
		return transportError(op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return &Error{Op: op, Status: resp.StatusCode, Reason: ReasonUnreachable, Err: fmt.Errorf("read answer: %w", err)}
	}
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(body, into); err != nil {
			return &Error{Op: op, Status: resp.StatusCode, Fatal: true, Reason: ReasonProtocol, Err: fmt.Errorf("answer is not the contract's JSON: %w", err)}
		}
		return nil
	}
	return statusError(op, resp, body)
}
